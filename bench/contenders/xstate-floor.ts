// The XState floor: the cheapest statechart that a "one XState v5 actor per execution" design
// could run for this workload (bench/lib/minimal-chart.ts: the step states a saga orchestrator
// must show, handlers run by this loop and sent in as events, no child actors, no manager, no
// outbox, no deadlines, no validation), on the floor's own wire (MiniBroker). Variant "redis":
// before each request the persisted snapshot is SET in Redis (the actor stays in memory: no pause
// on disk, no restore). A lower bound for sagachart's design, not something a user would deploy.
import { openFloorWire } from '../lib/floor-wire.js';
import { minimalChart, runMinimalSaga, type MinimalChartOptions } from '../lib/minimal-chart.js';
import { measured } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportResult, type Outcome } from '../lib/workload.js';

const args = contenderArgs();
const withRedis = args.variant !== 'ws';
const wire = await openFloorWire(args.variant, 'xstate-floor-bench');
const { broker, redis, prefix, pids } = wire;

const chart: MinimalChartOptions = { handlers: 'events', remoteChildren: false };
const machine = minimalChart(chart);

function runOne(i: number, fail: boolean): Promise<Outcome> {
  const uuid = `xstate-floor-${i}`;
  return runMinimalSaga(machine, { ...initialState(i, fail), i, fail }, chart, {
    answer: (request) => broker.request(uuid, 'step', request.target, request.content),
    ...(redis ? { store: async (persisted: unknown) => void (await redis.set(`${prefix}${uuid}`, JSON.stringify(persisted))) } : {}),
  });
}

const { result, processes } = await measured(pids, () => drive(args, runOne));
reportResult({ contender: withRedis ? 'xstate-floor-redis' : 'xstate-floor-ws', concurrency: args.concurrency, failRate: args.failRate, ...result, processes });

await wire.close();
