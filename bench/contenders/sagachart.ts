// sagachart on the workload: a SagaManager with a WebSocketBroker, the participant in its own
// process. Variants: "memory" (pauseOnDisk false, a repository that writes nothing), "redis"
// (RedisSagaRepository on REDIS_URL, pauseOnDisk true), "redis-aof" (the same on a redis-server
// this script starts with appendonly yes, appendfsync everysec).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../lib/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RedisSagaRepository,
  SagaManager,
  WebSocketBroker,
  type SagaListPage,
  type SagaRecord,
  type SagaRepository,
} from '../../src/index.js';
import { BENCH_SAGA, BENCH_SAGA_2PC } from '../lib/bench-saga.js';
import { clearRedisPrefix } from '../lib/clear-redis-prefix.js';
import { measured, redisPid, startScript, stop } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportPids, reportResult, type Outcome } from '../lib/workload.js';

const args = contenderArgs();
// `memory`, `redis`, `redis-aof`; `-2pc` runs the saga with its two-phase commit.
const variant = args.variant || 'redis';
const twoPhase = variant.endsWith('-2pc');
const store = variant.replace(/-2pc$/, '');
const saga = twoPhase ? BENCH_SAGA_2PC : BENCH_SAGA;

/** For "memory": keeps nothing, so the run measures the framework without storage. */
class DiscardingRepository implements SagaRepository {
  async store(_record: SagaRecord, _expected: number | null): Promise<void> {}
  async load(): Promise<SagaRecord | null> {
    return null;
  }
  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    return uuids.map(() => null);
  }
  async delete(): Promise<boolean> {
    return false;
  }
  async list(): Promise<SagaListPage> {
    return { items: [], cursor: null };
  }
  async close(): Promise<void> {}
}

let aofServer: ChildProcess | undefined;
let aofDir: string | undefined;
let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
if (store === 'redis-aof') {
  const port = await freePort();
  aofDir = mkdtempSync(join(tmpdir(), 'sagachart-bench-aof-'));
  aofServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', aofDir], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
}

const repository: SagaRepository =
  store === 'memory' ? new DiscardingRepository() : new RedisSagaRepository({ redis: redisUrl, keyPrefix: `sagachart-bench:${randomBytes(4).toString('hex')}:` });
if (repository instanceof RedisSagaRepository) {
  for (let i = 0; ; i++) {
    try {
      await repository.redis.ping();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}


const broker = await WebSocketBroker.listen({ port: 0, auth: { svc: 'bench-token' }, logger: {} });
const participant = await startScript('lib/participant.ts', [broker.url, 'bench-token']);
const manager = new SagaManager({ repository, broker, sagas: [saga], recoverIntervalMs: 0, ...(process.env.PAUSED_CACHE ? { pausedCacheSize: Number(process.env.PAUSED_CACHE) } : {}), logger: { error: (m, f) => console.error(m, f) } });
const pauseOnDisk = store !== 'memory';
const pids = {
  orchestrator: process.pid,
  participant: participant.pid,
  ...(repository instanceof RedisSagaRepository ? { redis: await redisPid(repository.redis as { info(s: string): Promise<string> }) } : {}),
};
reportPids(pids);

async function runOne(i: number, fail: boolean): Promise<Outcome> {
  const first = await manager.run(saga, { context: { ...initialState(i, fail), i, fail }, pauseOnDisk, raiseOnError: false });
  const execution = first.status === 'paused' ? await manager.waitFor(first.uuid) : first;
  if (execution.status === 'finished') return 'finished';
  const undone = execution.steps.filter((s) => s.compensated).map((s) => s.name);
  return execution.status === 'errored' && undone.length === 2 ? 'compensated' : 'error';
}

const { result, processes } = await measured(pids, () => drive(args, runOne));
reportResult({ contender: `sagachart-${twoPhase ? '2pc-' : ''}${store}`, concurrency: args.concurrency, failRate: args.failRate, ...result, processes });

await manager.close();
await broker.close();
await stop(participant);
if (repository instanceof RedisSagaRepository) await clearRedisPrefix(repository.redis, repository.keyPrefix);
await repository.close();
if (aofServer) {
  aofServer.kill('SIGTERM');
  await new Promise((r) => aofServer!.once('exit', r));
  rmSync(aofDir!, { recursive: true, force: true });
}
