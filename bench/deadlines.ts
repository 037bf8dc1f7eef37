// Deadline scheduler: CPU per operation with 100,000 keys armed, the heap that keeps each entry's
// position (src/runtime/deadline-scheduler.ts) against the one that searched for it
// (kept as bench/lib/indexof-deadline-scheduler.ts: the manager's heap before, which removed entries with indexOf), in the same run; and the bytes each armed key costs.
//
//   node --expose-gc --import tsx bench/deadlines.ts [--armed 100000] [--ops 10000] [--rounds 3]
//
// first arm: a key not armed yet; re-arm: an armed key to a new random time; disarm: arm(key, null).
// Times are process CPU (user + system) per operation, the median of the rounds.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ManualClock } from '../src/clock.js';
import { DeadlineScheduler as OldScheduler } from './lib/indexof-deadline-scheduler.js';
import { DeadlineScheduler } from '../src/runtime/deadline-scheduler.js';

const { values } = parseArgs({
  options: { armed: { type: 'string', default: '100000' }, ops: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } },
});
const ARMED = Number(values.armed);
const OPS = Number(values.ops);
const ROUNDS = Number(values.rounds);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/deadlines.ts');

interface Armable {
  arm(key: string, at: number | null): void;
  readonly size: number;
}
type Make = (clock: ManualClock) => Armable;
const contenders: Array<{ name: string; make: Make }> = [
  { name: 'positioned heap (src/runtime)', make: (clock) => new DeadlineScheduler(clock, () => undefined) },
  { name: 'indexOf heap (src/manager)', make: (clock) => new OldScheduler<undefined>(clock, () => undefined) },
];

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const keys = Array.from({ length: ARMED + OPS }, () => randomUUID());
/** Random due times within a day, the same for every contender and round. */
const times = Float64Array.from({ length: 3 * (ARMED + OPS) }, () => T0 + Math.floor(Math.random() * DAY));
/** Which armed keys the re-arm and disarm phases touch (distinct, so disarm always finds one). */
const picks = (() => {
  const order = Array.from({ length: ARMED }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, OPS);
})();

const cpuUs = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return d.user + d.system;
};

interface Run {
  firstArm: number;
  reArm: number;
  disarm: number;
  bytesPerKey: number;
}

function once(make: Make): Run {
  const clock = new ManualClock(T0);
  gc!();
  const heapBefore = process.memoryUsage().heapUsed;
  const s = make(clock);
  for (let i = 0; i < ARMED; i++) s.arm(keys[i]!, times[i]!);
  gc!();
  const bytesPerKey = (process.memoryUsage().heapUsed - heapBefore) / ARMED;

  let t = process.cpuUsage();
  for (let i = 0; i < OPS; i++) s.arm(keys[ARMED + i]!, times[ARMED + i]!);
  const firstArm = cpuUs(t) / OPS;

  t = process.cpuUsage();
  for (let i = 0; i < OPS; i++) s.arm(keys[picks[i]!]!, times[ARMED + OPS + i]!);
  const reArm = cpuUs(t) / OPS;

  t = process.cpuUsage();
  for (let i = 0; i < OPS; i++) s.arm(keys[picks[i]!]!, null);
  const disarm = cpuUs(t) / OPS;

  if (s.size !== ARMED) throw new Error(`expected ${ARMED} keys armed at the end, got ${s.size}`);
  return { firstArm, reArm, disarm, bytesPerKey };
}

// Warm-up: let both be optimised before measuring.
for (const c of contenders) once(c.make);
const runs = new Map<string, Run[]>(contenders.map((c) => [c.name, []]));
for (let round = 0; round < ROUNDS; round++) for (const c of contenders) runs.get(c.name)!.push(once(c.make));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const FIELDS = ['firstArm', 'reArm', 'disarm', 'bytesPerKey'] as const;
const result = new Map(contenders.map((c) => [c.name, Object.fromEntries(FIELDS.map((f) => [f, median(runs.get(c.name)!.map((r) => r[f]))])) as unknown as Run]));
const [fresh, old] = [result.get(contenders[0]!.name)!, result.get(contenders[1]!.name)!];

const cell = (x: number, digits = 2) => x.toFixed(digits).padStart(10);
console.log(`Deadline scheduler, ${ARMED.toLocaleString('en')} keys armed, ${OPS.toLocaleString('en')} operations per phase, median of ${ROUNDS} (CPU µs per operation)`);
console.log(`${'scheduler'.padEnd(32)}${'first arm'.padStart(10)}${'re-arm'.padStart(10)}${'disarm'.padStart(10)}${'B/key'.padStart(10)}`);
for (const [name, r] of result) console.log(`${name.padEnd(32)}${cell(r.firstArm)}${cell(r.reArm)}${cell(r.disarm)}${cell(r.bytesPerKey, 0)}`);
console.log(`${'old / new'.padEnd(32)}${cell(old.firstArm / fresh.firstArm, 1)}${cell(old.reArm / fresh.reArm, 1)}${cell(old.disarm / fresh.disarm, 1)}${cell(old.bytesPerKey / fresh.bytesPerKey, 1)}`);
console.log('(B/key: heap bytes per armed key, not counting the key strings, which the caller holds anyway)');
const round2 = (x: number) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify({
    bench: 'deadlines',
    armed: ARMED,
    ops: OPS,
    rounds: ROUNDS,
    unit: 'cpu_us_per_op',
    new: Object.fromEntries(FIELDS.map((f) => [f, round2(fresh[f])])),
    old: Object.fromEntries(FIELDS.map((f) => [f, round2(old[f])])),
    ratioOldToNew: Object.fromEntries(FIELDS.map((f) => [f, round2(old[f] / fresh[f])])),
  }),
);
