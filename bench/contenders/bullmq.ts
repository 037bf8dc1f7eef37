// BullMQ on the workload: each saga is a chain of jobs, one per step, on one queue; a BullMQ
// Worker in a process of its own (bullmq-worker.ts) is the participant. This process is the
// orchestrator: for each saga it adds the step-1 job (the ~200-byte request and the ~1 KB saga
// state in the job data), waits for the job's `completed` event, records the answer in the state,
// adds step 2, then step 3. A saga chosen to fail has its step-3 job fail (the worker throws, one
// attempt), and the orchestrator then adds the compensations of steps 2 and 1, in that order.
//
// Waiting: a QueueEvents reads the queue's event stream (XREAD BLOCK, no polling) from its very
// start (`lastEventId: '0-0'`, the queue being new), and one listener per event type settles the
// waiter registered under the job's id before the job was added. Not `job.waitUntilFinished()`:
// with `removeOnComplete`, a job that completes between `add` and the check waitUntilFinished
// makes (`isFinished`) is already gone, and it then rejects with "Missing key for job".
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { measured, redisPid, startScript, stop } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportPids, reportResult, requestContent, type Outcome } from '../lib/workload.js';

/** The jobs' names: the participant's targets. */
export type StepName = 'svc.reserve' | 'svc.charge' | 'svc.ship' | 'svc.refund' | 'svc.release';
/** A job's data: the step's request and the saga's state, carried from job to job. */
export interface StepData {
  request: ReturnType<typeof requestContent>;
  state: ReturnType<typeof initialState> & { done: string[] };
}
/** What the worker answers. */
export interface StepResult {
  ok: true;
  orderId: string;
}

/**
 * Jobs the worker runs at once: 128, room for the 64 sagas in flight of the standard run. Tried
 * here: 64, 128 and 256 are alike at concurrency 64; at 512 sagas in flight, 128 made ~1,800
 * sagas/s and 512 ~1,500 (more jobs fetched at once only adds contention on 2 cores).
 */
const WORKER_CONCURRENCY = 128;
/** A step whose job does not finish within this time counts as an error (never expected). */
const STEP_TIMEOUT_MS = 60_000;

const args = contenderArgs();
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bullmq-bench-${randomBytes(4).toString('hex')}`;
const queueName = 'saga-steps';

// BullMQ cannot `require('ioredis')` in native ESM, so it gets an instance: the Queue uses it as
// is, the QueueEvents duplicates it for its blocking XREAD.
const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue<StepData, StepResult, StepName>(queueName, {
  connection: redis,
  prefix,
  defaultJobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: true },
  // Room for the event stream while the QueueEvents catches up (default 10,000).
  streams: { events: { maxLen: 50_000 } },
});
const queueEvents = new QueueEvents(queueName, { connection: redis, prefix, lastEventId: '0-0' });

let worker: Awaited<ReturnType<typeof startScript>> | undefined;
let cleaned = false;
/** Stops the worker, deletes the queue and any key left under the prefix, closes connections. */
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await stop(worker);
  await queueEvents.close().catch(() => undefined);
  await queue.obliterate({ force: true }).catch((err: unknown) => console.error('obliterate:', err instanceof Error ? err.message : err));
  await queue.close().catch(() => undefined);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await redis.quit();
}
// Interrupted (e.g. by `timeout`): clean up anyway, within a few seconds.
const interrupted = (code: number) => () => {
  setTimeout(() => {
    worker?.kill('SIGKILL');
    process.exit(code);
  }, 5_000).unref();
  void cleanup().finally(() => process.exit(code));
};
process.once('SIGINT', interrupted(130));
process.once('SIGTERM', interrupted(143));
process.once('exit', () => worker?.kill('SIGKILL'));

await queue.waitUntilReady();
await queueEvents.waitUntilReady();

/** Waiters by job id: settled by the job's `completed` or `failed` event. */
interface Waiter {
  resolve: (outcome: { ok: true; result: StepResult } | { ok: false; reason: string }) => void;
  timer: NodeJS.Timeout;
}
const waiters = new Map<string, Waiter>();
function settle(jobId: string, outcome: Parameters<Waiter['resolve']>[0]): void {
  const waiter = waiters.get(jobId);
  if (!waiter) return;
  waiters.delete(jobId);
  clearTimeout(waiter.timer);
  waiter.resolve(outcome);
}
// QueueEvents has already JSON-parsed `returnvalue`, although its type says string.
queueEvents.on('completed', ({ jobId, returnvalue }) => settle(jobId, { ok: true, result: returnvalue as unknown as StepResult }));
queueEvents.on('failed', ({ jobId, failedReason }) => settle(jobId, { ok: false, reason: failedReason }));
queueEvents.on('error', (err) => console.error('bullmq queue events:', err.message));
queue.on('error', (err) => console.error('bullmq queue:', err.message));

worker = await startScript('contenders/bullmq-worker.ts', [redisUrl, prefix, queueName, String(WORKER_CONCURRENCY)]);
const pids = { orchestrator: process.pid, worker: worker.pid, redis: await redisPid(redis) };
reportPids(pids);

/** Adds step `name`'s job for saga i and waits for it: 200, 400 (declined) or 500 (anything else). */
async function step(i: number, name: string, target: StepName, fail: boolean, state: StepData['state']): Promise<number> {
  const jobId = `s${i}-${name}`;
  const finished = new Promise<Parameters<Waiter['resolve']>[0]>((resolve) => {
    const timer = setTimeout(() => settle(jobId, { ok: false, reason: 'timed out' }), STEP_TIMEOUT_MS);
    waiters.set(jobId, { resolve, timer });
  });
  try {
    await queue.add(target, { request: requestContent(i, name, fail), state }, { jobId });
  } catch (err) {
    settle(jobId, { ok: false, reason: err instanceof Error ? err.message : String(err) });
  }
  const outcome = await finished;
  const status = outcome.ok ? (outcome.result.orderId === state.orderId ? 200 : 500) : outcome.reason === 'declined' ? 400 : 500;
  state.done.push(`${name}:${status}`);
  return status;
}

let reported = 0;
async function runOne(i: number, fail: boolean): Promise<Outcome> {
  const state: StepData['state'] = { ...initialState(i, fail), done: [] };
  const run = (name: string, target: StepName) => step(i, name, target, fail, state);
  const outcome = await (async (): Promise<Outcome> => {
    if ((await run('reserve', 'svc.reserve')) !== 200) return 'error';
    if ((await run('charge', 'svc.charge')) !== 200) return 'error';
    const shipped = await run('ship', 'svc.ship');
    if (shipped === 200) return 'finished';
    if (shipped !== 400) return 'error';
    if ((await run('charge-undo', 'svc.refund')) !== 200) return 'error';
    if ((await run('reserve-undo', 'svc.release')) !== 200) return 'error';
    return 'compensated';
  })();
  if (outcome === 'error' && reported++ < 5) console.error(`saga ${i}: ${state.done.join(', ')}`);
  return outcome;
}

const { result, processes } = await measured(pids, () => drive(args, runOne));
reportResult({ contender: 'bullmq', concurrency: args.concurrency, failRate: args.failRate, ...result, processes });

await cleanup();
