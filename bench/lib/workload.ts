// The workload every contender runs: sagas of 3 remote steps; each step sends a ~200-byte request
// to a participant in another process, which answers at once; the saga's state is ~1 KB; a share
// of sagas (failRate) fails at step 3 and compensates steps 2 and 1.
import { parseArgs } from 'node:util';

export const STEPS = ['reserve', 'charge', 'ship'] as const;

/** ~200 bytes of request content for step `step` of saga `i`. */
export function requestContent(i: number, step: string, fail: boolean): { orderId: string; step: string; fail: boolean; pad: string } {
  return { orderId: `order-${i}`, step, fail, pad: 'p'.repeat(140) };
}

/** ~1 KB of saga state. */
export function initialState(i: number, fail: boolean): { orderId: string; fail: boolean; lines: string[] } {
  return { orderId: `order-${i}`, fail, lines: Array.from({ length: 10 }, (_, k) => `line-${k}-${'x'.repeat(80)}`) };
}

/** Whether saga `i` fails at step 3 (deterministic: the same sagas fail for every contender). */
export function failsAt3(i: number, failRate: number): boolean {
  if (failRate <= 0) return false;
  const every = Math.round(1 / failRate);
  return i % every === every - 1;
}

/** How one saga ended: as expected (finished, or compensated when chosen to fail), or not. */
export type Outcome = 'finished' | 'compensated' | 'error';

export interface DriveOptions {
  concurrency: number;
  sagas: number;
  warmup: number;
  failRate: number;
}

export interface DriveResult {
  sagas: number;
  seconds: number;
  sagasPerSec: number;
  stepsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  finished: number;
  compensated: number;
  errors: number;
}

/** Steps a saga runs: 3, plus 2 compensations for one that fails at step 3. */
export const stepsOf = (fail: boolean) => (fail ? 5 : 3);

/**
 * Runs `warmup` sagas (not measured), then `sagas` sagas with `concurrency` in flight, timing
 * each. `runOne(i, fail)` runs saga i and says how it ended; an outcome other than the expected
 * one is an error.
 */
export async function drive(options: DriveOptions, runOne: (i: number, fail: boolean) => Promise<Outcome>): Promise<DriveResult> {
  const { concurrency, sagas, warmup, failRate } = options;
  await pool(warmup, concurrency, async (i) => void (await runOne(-1 - i, false).catch(() => 'error')));
  const latencies = new Float64Array(sagas);
  let finished = 0;
  let compensated = 0;
  let errors = 0;
  let steps = 0;
  const started = process.hrtime.bigint();
  await pool(sagas, concurrency, async (i) => {
    const fail = failsAt3(i, failRate);
    const t0 = process.hrtime.bigint();
    let outcome: Outcome;
    try {
      outcome = await runOne(i, fail);
    } catch {
      outcome = 'error';
    }
    latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    const expected = fail ? 'compensated' : 'finished';
    if (outcome !== expected) errors++;
    else if (outcome === 'finished') finished++;
    else compensated++;
    steps += stepsOf(fail);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return {
    sagas,
    seconds: round(seconds, 3),
    sagasPerSec: round(sagas / seconds, 0),
    stepsPerSec: round(steps / seconds, 0),
    p50Ms: round(pct(0.5), 3),
    p99Ms: round(pct(0.99), 3),
    finished,
    compensated,
    errors,
  };
}

async function pool(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, Math.max(total, 1)) }, async () => {
      while (next < total) await task(next++);
    }),
  );
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

/** The options every contender script takes. Also: a contender whose runner died exits too. */
export function contenderArgs() {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '64' },
      sagas: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      'fail-rate': { type: 'string', default: '0.1' },
      variant: { type: 'string', default: '' },
    },
    allowPositionals: true,
  });
  return {
    concurrency: Number(values.concurrency),
    sagas: Number(values.sagas),
    warmup: Number(values.warmup),
    failRate: Number(values['fail-rate']),
    variant: values.variant ?? '',
  };
}

/** What a contender prints: `PIDS` as soon as its processes run, `RESULT` at the end. */
export function reportPids(pids: Record<string, number | undefined>): void {
  process.stdout.write(`PIDS ${JSON.stringify(pids)}\n`);
}

export function reportResult(result: DriveResult & Record<string, unknown>): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}
