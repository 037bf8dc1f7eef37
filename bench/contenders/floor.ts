// The floor: a hand-written orchestrator loop with no framework. Per step: a WebSocket request
// to the participant process, await its response, and (variant "redis") SET the ~1 KB saga state
// in Redis. Variant "ws": no Redis at all. The most any orchestrator could do on this machine.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MiniBroker } from '../lib/mini-broker.js';
import { dropKeys, measured, redisPid, startScript, stop } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportPids, reportResult, requestContent, type Outcome } from '../lib/workload.js';

const args = contenderArgs();
const withRedis = args.variant !== 'ws';
const broker = await MiniBroker.listen();
const participant = await startScript('lib/participant.ts', [broker.url, 'floor-token']);
await broker.ready();
const redis = withRedis ? new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined;
const prefix = `floor-bench:${randomBytes(4).toString('hex')}:`;
const pids = { orchestrator: process.pid, participant: participant.pid, ...(redis ? { redis: await redisPid(redis) } : {}) };
reportPids(pids);

async function runOne(i: number, fail: boolean): Promise<Outcome> {
  const uuid = `floor-${i}`;
  const state: Record<string, unknown> = { ...initialState(i, fail), done: [] as string[] };
  const save = async () => {
    if (redis) await redis.set(`${prefix}${uuid}`, JSON.stringify(state));
  };
  const step = async (name: string, target: string) => {
    const status = await broker.request(uuid, name, target, requestContent(i, name, fail));
    (state.done as string[]).push(`${name}:${status}`);
    await save();
    return status;
  };
  if ((await step('reserve', 'svc.reserve')) !== 200) return 'error';
  if ((await step('charge', 'svc.charge')) !== 200) return 'error';
  const shipped = await step('ship', 'svc.ship');
  if (shipped === 200) return 'finished';
  if (shipped !== 400) return 'error';
  if ((await step('charge-undo', 'svc.refund')) !== 200) return 'error';
  if ((await step('reserve-undo', 'svc.release')) !== 200) return 'error';
  return 'compensated';
}

const { result, processes } = await measured(pids, () => drive(args, runOne));
reportResult({ contender: withRedis ? 'floor-redis' : 'floor-ws', concurrency: args.concurrency, failRate: args.failRate, ...result, processes });

if (redis) await dropKeys(redis, prefix);
broker.close();
await stop(participant);
