// Heap cost of sagas paused on disk: runs N sagas with pauseOnDisk against Redis and compares
// the orchestrator's heap (after a full GC) with its idle heap, in the same process and run.
// Run: node --expose-gc --import tsx bench/paused-memory.ts [--sagas 100000] [--concurrency 256]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { RedisSagaRepository, Saga, SagaManager, SagaRequest, type OutgoingRequest, type SagaBroker } from '../src/index.js';
import { clearRedisPrefix } from './lib/clear-redis-prefix.js';

const { values } = parseArgs({ options: { sagas: { type: 'string', default: '100000' }, concurrency: { type: 'string', default: '256' } } });
const total = Number(values.sagas);
const concurrency = Number(values.concurrency);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

/** A broker that sends nothing anywhere: the sagas stay paused, waiting for their participant. */
class NullBroker implements SagaBroker {
  sent = 0;
  attach(): void {}
  send(_request: OutgoingRequest): void {
    this.sent++;
  }
  async close(): Promise<void> {}
}

const SAGA = new Saga('paused-memory', { twoPhaseCommit: false })
  .localStep('prepare')
  .onExecute((ctx) => {
    ctx.note = 'x'.repeat(200);
  })
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId as string, items: ['a', 'b', 'c'] }))
  .onFailure(() => new SagaRequest('inventory.release', {}))
  .timeout(3_600_000) // a deadline per paused saga: its timer entry is part of what is measured
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .commit();

const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const repository = new RedisSagaRepository({ keyPrefix: `sagachart-bench:${randomBytes(4).toString('hex')}:` });
const broker = new NullBroker();
const manager = new SagaManager({ repository, broker, sagas: [SAGA], recoverIntervalMs: 0 });

// Warm up (JIT, compiled machine, connection), then take the idle heap.
for (let i = 0; i < 500; i++) await manager.run(SAGA, { context: { orderId: `warm-${i}` }, pauseOnDisk: true });
const idle = heap();

const bar = new cliProgress.SingleBar({ format: 'paused sagas {bar} {value}/{total}', stream: process.stderr }, cliProgress.Presets.shades_classic);
bar.start(total, 0);
const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const i = next++;
      await manager.run(SAGA, { context: { orderId: `order-${i}` }, pauseOnDisk: true });
      if (i % 1000 === 0) bar.update(next);
    }
  }),
);
bar.update(total);
bar.stop();
const seconds = (Date.now() - started) / 1000;
const after = heap();
const deltaMb = (after - idle) / 1024 / 1024;
const result = {
  bench: 'paused-memory',
  sagas: total,
  idleHeapMb: +(idle / 1024 / 1024).toFixed(1),
  heapMb: +(after / 1024 / 1024).toFixed(1),
  deltaMb: +deltaMb.toFixed(1),
  bytesPerPausedSaga: Math.round((after - idle) / total),
  liveActors: manager.liveCount,
  requestsSent: broker.sent,
  sagasPerSecond: Math.round(total / seconds),
  goalMb: 50,
  pass: deltaMb <= 50 && manager.liveCount === 0,
};
await manager.close();
await clearRedisPrefix(repository.redis, repository.keyPrefix);
await repository.close();

console.log('\n| paused on disk | idle heap | heap after | delta | per saga | live actors | rate |');
console.log('|---|---|---|---|---|---|---|');
console.log(
  `| ${result.sagas} | ${result.idleHeapMb} MB | ${result.heapMb} MB | ${result.deltaMb} MB (goal ≤ 50) | ${result.bytesPerPausedSaga} B | ${result.liveActors} | ${result.sagasPerSecond} sagas/s |`,
);
console.log(JSON.stringify(result));
if (!result.pass) process.exitCode = 1;
