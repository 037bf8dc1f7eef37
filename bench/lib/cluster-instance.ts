// One orchestrator instance of the cluster benchmark (bench/cluster.ts), in its own process: a
// WebSocketBroker, a SagaCluster and a SagaManager on RedisSagaRepository, all on one Redis under
// the run's key prefix. Driven over the IPC channel of `fork()`:
//   → { type: 'members', expect }   renews the lease until it sees `expect` members
//   → { type: 'services', expect }  waits until the participants of those services are connected here
//   → { type: 'run', from, count, concurrency }  runs sagas from..from+count-1, `concurrency` at a time
//   → { type: 'sample' }  CPU used and messages routed since the last run started (asked once every
//     instance is done: one that finished its share early still routes for the others)
//   ← { type: 'ready', url } / 'members' / 'services' / { type: 'done', ... } / 'closed'
//   → { type: 'close' }
// Usage (by fork only): cluster-instance.ts <instance> <keyPrefix> <redisUrl> <failRate>
import { RedisSagaRepository, SagaCluster, SagaManager, WebSocketBroker, type SagaClusterStats } from '../../src/index.js';
import { CLUSTER_AUTH, CLUSTER_SAGA } from './cluster-saga.js';
import { failsAt3, initialState, type Outcome } from './workload.js';

const [instance, keyPrefix, redisUrl, failRateText] = process.argv.slice(2);
if (!instance || !keyPrefix || !redisUrl || !process.send) throw new Error('usage (forked): cluster-instance.ts <instance> <keyPrefix> <redisUrl> <failRate>');
const failRate = Number(failRateText ?? '0.1');
const send = (message: object) => process.send!(message);
const logger = { error: (m: string, f?: object) => console.error(`[${instance}] ${m}`, f ?? '') };

const broker = await WebSocketBroker.listen({ port: 0, auth: CLUSTER_AUTH, logger: {} });
const cluster = await SagaCluster.start({ redis: redisUrl, instance, broker, keyPrefix, logger });
const repository = new RedisSagaRepository({ redis: redisUrl, keyPrefix, logger });
const manager = new SagaManager({ repository, sagas: [CLUSTER_SAGA], recoverIntervalMs: 0, logger, ...cluster.managerOptions() });
await cluster.attach(manager);

async function runOne(i: number): Promise<Outcome> {
  const fail = failsAt3(i, failRate);
  const first = await manager.run(CLUSTER_SAGA, { context: { ...initialState(i, fail), i, fail }, pauseOnDisk: true, raiseOnError: false });
  const execution = first.status === 'paused' ? await manager.waitFor(first.uuid) : first;
  if (execution.status === 'finished') return fail ? 'error' : 'finished';
  const undone = execution.steps.filter((s) => s.compensated).length;
  return fail && execution.status === 'errored' && undone === 2 ? 'compensated' : 'error';
}

const diff = (a: SagaClusterStats, b: SagaClusterStats) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof SagaClusterStats] - a[k as keyof SagaClusterStats]])) as unknown as SagaClusterStats;

let stats0 = cluster.stats;
let cpu0 = process.cpuUsage();

async function run(from: number, count: number, concurrency: number) {
  const latencies: number[] = new Array(count);
  const outcomes = { finished: 0, compensated: 0, errors: 0 };
  stats0 = cluster.stats;
  cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, async () => {
      while (next < count) {
        const k = next++;
        const s0 = process.hrtime.bigint();
        let outcome: Outcome;
        try {
          outcome = await runOne(from + k);
        } catch (err) {
          logger.error('saga failed to run', { error: err instanceof Error ? err.message : String(err) });
          outcome = 'error';
        }
        latencies[k] = Number(process.hrtime.bigint() - s0) / 1e6;
        if (outcome === 'error') outcomes.errors++;
        else outcomes[outcome]++;
      }
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, latencies, ...outcomes };
}

function sample() {
  const cpu = process.cpuUsage(cpu0);
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, stats: diff(stats0, cluster.stats) };
}

process.on('message', (message: { type: string; expect?: number | string[]; from?: number; count?: number; concurrency?: number }) => {
  void (async () => {
    switch (message.type) {
      case 'members': {
        for (let i = 0; i < 200 && cluster.membership.members.length !== message.expect; i++) {
          await cluster.membership.renew();
          if (cluster.membership.members.length !== message.expect) await new Promise((r) => setTimeout(r, 25));
        }
        return send({ type: 'members', members: cluster.membership.members });
      }
      case 'services': {
        const expected = message.expect as string[];
        for (let i = 0; i < 400 && !expected.every((s) => broker.connectedServices().includes(s)); i++) await new Promise((r) => setTimeout(r, 25));
        return send({ type: 'services', services: broker.connectedServices() });
      }
      case 'run':
        return send({ type: 'done', instance, ...(await run(message.from!, message.count!, message.concurrency!)) });
      case 'sample':
        return send({ type: 'sample', instance, ...sample() });
      case 'close':
        await cluster.close();
        await manager.close();
        await broker.close();
        await repository.close();
        send({ type: 'closed' });
        process.disconnect();
        return;
    }
  })().catch((err: unknown) => {
    console.error(`[${instance}]`, err);
    process.exit(1);
  });
});
// The driver died: go too.
process.on('disconnect', () => setTimeout(() => process.exit(0), 2_000).unref());
send({ type: 'ready', url: broker.url, pid: process.pid });
