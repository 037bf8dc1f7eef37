// One orchestrator instance of the multi-process cluster test
// (test/integration/cluster-processes.test.ts), in a child process the test may SIGKILL. Env:
//   INSTANCE (its name), REDIS_URL or REDIS_NODES (a Redis Cluster: host:port,host:port,…),
//   KEY_PREFIX, LEASE_MS, ADMIN_TOKEN.
// It runs a WebSocket broker (any free port) with the admin API on it, a SagaCluster and a
// manager on RedisSagaRepository, and prints on stdout:
//   READY {"instance","pid","port","members"}   attached: it owns and runs executions
//   STARTED {"n","uuid"}                        a started saga was first stored (acknowledged)
//   MEMBERS {"members","at"}                    the live instances changed, as it sees them
//   TAKEOVER {"recovered","resent","at"}        it took over executions of instances that left
//   SYNCED {"n","stats","maxLagMs"}             the answer to `SYNC n`: the cluster's stats, the longest event-loop delay
// Commands on stdin: `START {"n":1,"decline":false,"hang":false}` starts a saga here (placed on
// this instance), `SYNC n`.
import { createInterface } from 'node:readline';
import { Cluster, Redis } from 'ioredis';
import { AdminApi, RedisSagaRepository, SagaCluster, SagaManager, WebSocketBroker, type SagaLogger } from '../../src/index.js';
import { CLUSTER_ORDER, CLUSTER_TOKENS, type ClusterOrder } from './cluster-saga.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    console.error(`cluster-instance: ${name} is required`);
    process.exit(2);
  }
  return value;
};
const out = (tag: string, data: object) => process.stdout.write(`${tag} ${JSON.stringify(data)}\n`);

const instance = env('INSTANCE');
const keyPrefix = env('KEY_PREFIX');
const leaseMs = Number(env('LEASE_MS'));
const logger: SagaLogger = {
  info: (message, fields) => {
    if (message === 'took over executions of instances that left') out('TAKEOVER', { ...fields, at: Date.now() });
  },
  warn: (message, fields) => console.error(`[${instance} ${process.pid}] WARN ${message}`, JSON.stringify(fields ?? {})),
  error: (message, fields) => console.error(`[${instance} ${process.pid}] ERROR ${message}`, JSON.stringify(fields ?? {})),
};

const nodes = process.env.REDIS_NODES;
const redis: Redis | Cluster = nodes
  ? new Cluster(
      nodes.split(',').map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) })),
      { redisOptions: { maxRetriesPerRequest: null } },
    )
  : new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
redis.on('error', (err: Error) => logger.warn?.('redis', { error: err.message }));

const repository = new RedisSagaRepository({ redis, keyPrefix, logger });
const broker = await WebSocketBroker.listen({ port: 0, host: '127.0.0.1', auth: { ...CLUSTER_TOKENS }, logger });
const cluster = await SagaCluster.start({ redis, instance, broker, keyPrefix, leaseMs, logger });
const manager = new SagaManager({ repository, sagas: [CLUSTER_ORDER], logger, recoverIntervalMs: 0, ...cluster.managerOptions() });
const admin = AdminApi.attach(broker.server, { manager, broker, token: env('ADMIN_TOKEN'), router: cluster.actionRouter, logger });
cluster.membership.onChange((_previous, next) => out('MEMBERS', { members: next, at: Date.now() }));

// A saga counts as started once its first store succeeded.
const starting = new Map<string, number>();
manager.onStore((event) => {
  const n = starting.get(event.uuid);
  if (n === undefined || event.outcome !== 'stored') return;
  starting.delete(event.uuid);
  out('STARTED', { n, uuid: event.uuid });
});

await cluster.attach(manager);
out('READY', { instance, pid: process.pid, port: broker.port, members: cluster.membership.members });

// The longest the event loop was held up (a lease renewed late shows here first).
let maxLagMs = 0;
let tick = Date.now();
setInterval(() => {
  const now = Date.now();
  maxLagMs = Math.max(maxLagMs, now - tick - 50);
  tick = now;
}, 50).unref();

let closing = false;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (closing) return;
  if (line.startsWith('SYNC ')) return out('SYNCED', { n: Number(line.slice(5)), stats: cluster.stats, maxLagMs });
  if (!line.startsWith('START ')) return;
  const order = JSON.parse(line.slice(6)) as ClusterOrder;
  const uuid = cluster.newId();
  starting.set(uuid, order.n);
  manager.run(CLUSTER_ORDER, { uuid, context: order, raiseOnError: false, returnExecution: false }).catch((err: unknown) => {
    if (!closing) logger.error?.('run failed', { n: order.n, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  });
});

const shutdown = async () => {
  if (closing) return;
  closing = true;
  await cluster.close();
  await admin.close();
  await manager.close();
  await broker.close();
  await repository.close();
  redis.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
