// Restore cost: N sagas paused in Redis, then a fresh manager's recover() picks them all up
// (reads each, checks it restores, re-sends its outbox, re-arms its deadline). Figures: executions
// recovered per second, and the restore of one snapshot into a live actor (µs).
// Run: node --import tsx bench/restore.ts [--sagas 20000]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createActor, type Snapshot } from 'xstate';
import { compileSaga, RedisSagaRepository, Saga, SagaManager, SagaRequest, type OutgoingRequest, type SagaBroker } from '../src/index.js';
import { clearRedisPrefix } from './lib/clear-redis-prefix.js';

const { values } = parseArgs({ options: { sagas: { type: 'string', default: '20000' } } });
const total = Number(values.sagas);

class CountingBroker implements SagaBroker {
  sent = 0;
  attach(): void {}
  send(_r: OutgoingRequest): void {
    this.sent++;
  }
  async close(): Promise<void> {}
}

const SAGA = new Saga('restore-bench', { twoPhaseCommit: false })
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('svc.reserve', { orderId: ctx.orderId as string, pad: 'p'.repeat(140) }))
  .onFailure(() => new SagaRequest('svc.release', {}))
  .timeout(3_600_000)
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('svc.charge', {}))
  .commit();

const keyPrefix = `sagachart-bench-restore:${randomBytes(4).toString('hex')}:`;
const repository = new RedisSagaRepository({ keyPrefix });
const first = new SagaManager({ repository, broker: new CountingBroker(), sagas: [SAGA], recoverIntervalMs: 0 });
let next = 0;
await Promise.all(
  Array.from({ length: 128 }, async () => {
    while (next < total) {
      const i = next++;
      await first.run(SAGA, { context: { orderId: `o-${i}`, lines: Array.from({ length: 10 }, () => 'x'.repeat(80)) }, pauseOnDisk: true });
    }
  }),
);
await first.close();

const broker = new CountingBroker();
const secondRepository = new RedisSagaRepository({ keyPrefix });
const second = new SagaManager({ repository: secondRepository, broker, sagas: [SAGA], recoverIntervalMs: 0 });
const t0 = process.hrtime.bigint();
const report = await second.recover();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

// One snapshot restored into a live actor, started and stopped: what resuming a paused saga costs in CPU.
const record = (await repository.list({ limit: 1 })).items[0]!;
const stored = (await repository.load(record.uuid))!;
const machine = compileSaga(SAGA);
const text = JSON.stringify(stored.snapshot);
const rounds = 5_000;
const r0 = process.hrtime.bigint();
for (let i = 0; i < rounds; i++) createActor(machine, { snapshot: JSON.parse(text) as Snapshot<unknown> }).start().stop();
const restoreUs = Number(process.hrtime.bigint() - r0) / 1e3 / rounds;

const result = {
  bench: 'restore',
  sagas: total,
  recovered: report.recovered,
  resent: report.resent,
  failed: report.failed.length,
  recoverSeconds: +seconds.toFixed(2),
  recoveredPerSec: Math.round(report.recovered / seconds),
  restoreActorUs: +restoreUs.toFixed(1),
  snapshotBytes: text.length,
};
await second.close();
await secondRepository.close();
await clearRedisPrefix(repository.redis, repository.keyPrefix);
await repository.close();
console.log('\n| paused sagas | recover() | recovered/s | resent | restore one actor | snapshot |');
console.log('|---|---|---|---|---|---|');
console.log(`| ${total} | ${result.recoverSeconds} s | ${result.recoveredPerSec} | ${result.resent} | ${result.restoreActorUs} µs | ${result.snapshotBytes} B |`);
console.log(JSON.stringify(result));
if (result.failed || result.recovered !== total) process.exitCode = 1;
