// The BullMQ contender's participant: a process of its own running a BullMQ Worker on the
// contender's queue. Each job is one saga step (or compensation), named after the participant's
// targets (svc.reserve, svc.charge, svc.ship, svc.refund, svc.release); the worker answers at once,
// and throws for `svc.ship` when the request says the saga fails at step 3 (the job then fails
// on its single attempt, and the orchestrator compensates).
// Usage: bullmq-worker.ts <redis url> <prefix> <queue> <concurrency>. Prints `READY` once the
// worker runs.
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { StepData, StepName, StepResult } from './bullmq.js';

const [url, prefix, queueName, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
if (!url || !prefix || !queueName || !Number.isInteger(concurrency) || concurrency <= 0) {
  throw new Error('usage: bullmq-worker.ts <redis url> <prefix> <queue> <concurrency>');
}

// An ioredis instance, as BullMQ asks in native ESM (it cannot `require('ioredis')` from here);
// the Worker duplicates it for its own (blocking) connections.
const connection = new Redis(url, { maxRetriesPerRequest: null });

const answer = async (job: Job<StepData, StepResult, StepName>): Promise<StepResult> => {
  if (job.name === 'svc.ship' && job.data.request.fail) throw new Error('declined');
  return { ok: true, orderId: job.data.request.orderId };
};

const worker = new Worker<StepData, StepResult, StepName>(queueName, answer, { connection, prefix, concurrency });
worker.on('error', (err) => console.error('bullmq worker:', err.message));
await worker.waitUntilReady();
process.stdout.write('READY\n');

let closing = false;
async function shutdown(code: number): Promise<void> {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(code), 2_000).unref();
  await worker.close().catch(() => undefined);
  connection.disconnect();
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
// Orphaned (the benchmark that started it died): go too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown(0);
}, 500).unref();
