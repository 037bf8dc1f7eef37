// The floor: a hand-written orchestrator loop with no framework. Per step: a WebSocket request
// to the participant process, await its response, and (variant "redis") SET the ~1 KB saga state
// in Redis. Variant "ws": no Redis at all. The most any orchestrator could do on this machine.
import { openFloorWire } from '../lib/floor-wire.js';
import { measured } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportResult, requestContent, type Outcome } from '../lib/workload.js';

const args = contenderArgs();
const withRedis = args.variant !== 'ws';
const wire = await openFloorWire(args.variant, 'floor-bench');
const { broker, redis, prefix, pids } = wire;

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

await wire.close();
