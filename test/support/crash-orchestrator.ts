// The orchestrator of the crash test (test/chaos/crash-recovery.test.ts), in a child process that
// the test kills with SIGKILL and starts again. Configured by env:
//   REPO=redis|file, REDIS_URL + KEY_PREFIX (redis) or DATA_DIR (file), PORT (the same on every
//   start), TOKENS (JSON: a token per service), SAGAS (default 300), PACE_MS (default 2).
// It prints machine-readable lines on stdout:
//   READY {"port","pid"}               the broker listens (recovery has not run yet)
//   RECOVERED {report…,"recoverMs","sinceStartMs","storedAtStart"}
//   LAUNCHED {"launched","skipped"}    every saga not yet in the repository has been started
//   PROGRESS {"created","running","paused","finished","errored"}   every 250 ms
import { performance } from 'node:perf_hooks';
import { FileSagaRepository, RedisSagaRepository, SagaManager, WebSocketBroker, type SagaLogger, type SagaRepository } from '../../src/index.js';
import { CRASH_SAGA, crashUuid } from './crash-saga.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    console.error(`crash-orchestrator: ${name} is required`);
    process.exit(2);
  }
  return value;
};

const out = (tag: string, data: object) => process.stdout.write(`${tag} ${JSON.stringify(data)}\n`);
const logger: SagaLogger = {
  warn: (message, fields) => console.error(`[orchestrator ${process.pid}] WARN ${message}`, JSON.stringify(fields ?? {})),
  error: (message, fields) => console.error(`[orchestrator ${process.pid}] ERROR ${message}`, JSON.stringify(fields ?? {})),
};

async function openRepository(): Promise<SagaRepository> {
  const kind = env('REPO');
  if (kind === 'redis') return new RedisSagaRepository({ redis: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX'), logger });
  if (kind === 'file') return FileSagaRepository.open({ dir: env('DATA_DIR'), logger });
  throw new Error(`REPO must be redis or file, got ${kind}`);
}

const sagas = Number(process.env.SAGAS ?? 300);
const paceMs = Number(process.env.PACE_MS ?? 2);
const port = Number(env('PORT'));
const tokens = JSON.parse(env('TOKENS')) as Record<string, string>;

const repository = await openRepository();
const broker = await WebSocketBroker.listen({ port, auth: tokens, logger });
const manager = new SagaManager({ repository, broker, sagas: [CRASH_SAGA], logger, recoverIntervalMs: 500 });
out('READY', { port: broker.port, pid: process.pid });

let closing = false;
let progress: ReturnType<typeof setInterval> | undefined;
const shutdown = async (code: number) => {
  if (closing) return;
  closing = true;
  clearInterval(progress);
  await manager.close();
  await broker.close();
  await repository.close();
  process.exit(code);
};
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

async function countByStatus(): Promise<Record<string, number>> {
  const counts: Record<string, number> = { created: 0, running: 0, paused: 0, finished: 0, errored: 0 };
  let cursor: string | null = null;
  do {
    const page = await repository.list({ cursor, limit: 500 });
    for (const item of page.items) counts[item.status] = (counts[item.status] ?? 0) + 1;
    cursor = page.cursor;
  } while (cursor);
  return counts;
}

/** Recovers, then starts every saga not stored yet. A SIGTERM meanwhile ends it quietly. */
async function main(): Promise<void> {
  const storedAtStart = Object.values(await countByStatus()).reduce((a, b) => a + b, 0);
  const started = performance.now();
  const report = await manager.recover();
  out('RECOVERED', { ...report, recoverMs: Math.round(performance.now() - started), sinceStartMs: Math.round(performance.now()), storedAtStart });
  if (closing) return;

  progress = setInterval(() => {
    countByStatus()
      .then((counts) => !closing && out('PROGRESS', counts))
      .catch((err: unknown) => {
        if (!closing) logger.error?.('progress failed', { error: String(err) });
      });
  }, 250);

  // One saga every PACE_MS, without waiting for one before the next: sagas are in flight at every
  // moment of a life, so a kill lands in the middle of some.
  let launched = 0;
  let skipped = 0;
  const runs: Array<Promise<void>> = [];
  for (let i = 0; i < sagas && !closing; i++) {
    const uuid = crashUuid(i);
    if (await repository.load(uuid)) {
      skipped++;
      continue;
    }
    launched++;
    runs.push(
      manager
        .run(CRASH_SAGA, { uuid, context: { index: i, orderId: `order-${i}` }, pauseOnDisk: true, raiseOnError: false, returnExecution: false })
        .then(() => undefined)
        .catch((err: unknown) => {
          if (!closing) logger.error?.('run failed', { uuid, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
        }),
    );
    await new Promise((r) => setTimeout(r, paceMs));
  }
  await Promise.all(runs);
  if (!closing) out('LAUNCHED', { launched, skipped });
  // Then it keeps running: responses and the periodic recovery finish the sagas. The test stops it.
}

main().catch((err: unknown) => {
  if (closing) return;
  logger.error?.('the orchestrator failed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
