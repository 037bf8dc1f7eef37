// The participants of test/integration/websocket-transactions.test.ts: one child process hosting
// inventory, payment, shipping and audit over real WebSocket connections (connectParticipant),
// with the two-phase-commit hooks. How each behaves for an execution is read from the plan its
// requests carry (see tx-saga.ts). Env: URL (the orchestrator's broker), TOKENS (JSON).
//
// stdout, machine-readable:
//   READY                          every service is connected the first time
//   LEDGER {TxLedgerEntry}         one line per run of a handler or a hook, in the order they ran
//                                  (a duplicate the SDK answers from memory runs nothing, writes nothing)
//   SYNCED {n, stats, effects}     the answer to `SYNC n` on stdin: every line written before it is
//                                  out; stats are the SDK's counters, effects what each service holds
import { createInterface } from 'node:readline';
import { connectParticipant, SagaBusinessError, SagaResponse, type ParticipantHandler, type ParticipantRequestInfo, type SagaLogger, type TransactionHook } from '../../src/index.js';
import { TX_ALL_SERVICES, TX_RELATED, type TxLedgerEntry, type TxPlan } from './tx-saga.js';

const url = process.env.URL;
const tokens = JSON.parse(process.env.TOKENS ?? '{}') as Record<string, string>;
if (!url) {
  console.error('tx-participants: URL is required');
  process.exit(2);
}

const logger: SagaLogger = {
  warn: (message, fields) => console.error(`[tx-participants] WARN ${message}`, JSON.stringify(fields ?? {})),
  error: (message, fields) => console.error(`[tx-participants] ERROR ${message}`, JSON.stringify(fields ?? {})),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const write = (entry: TxLedgerEntry) => process.stdout.write(`LEDGER ${JSON.stringify(entry)}\n`);

/** The plan of each execution, learnt from its requests (the hooks get only the transaction id). */
const plans = new Map<string, TxPlan>();
/** Runs so far of a (service, what, uuid), for plans that act on the first n runs. */
const runs = new Map<string, number>();
const nextRun = (key: string): number => {
  const n = (runs.get(key) ?? 0) + 1;
  runs.set(key, n);
  return n;
};

/** What each service holds: transactions reserved, committed and rejected (the hooks' effects). */
const effects = Object.fromEntries(TX_ALL_SERVICES.map((s) => [s, { reserved: new Set<string>(), committed: new Set<string>(), rejected: new Set<string>() }]));

function handlerOf(service: string): ParticipantHandler {
  return async (content, info: ParticipantRequestInfo) => {
    const plan = ((content as { plan?: TxPlan } | null)?.plan ?? {}) as TxPlan;
    plans.set(info.uuid, plan);
    const base = { kind: 'handler' as const, uuid: info.uuid, service, target: info.target, phase: info.phase, attempt: info.attempt, requestId: info.requestId };
    if (info.phase === 'compensate') {
      if (plan.failCompensation?.service === service && nextRun(`${service} undo ${info.uuid}`) <= plan.failCompensation.times) {
        write({ ...base, outcome: 'failed' });
        throw new SagaBusinessError(`${service} cannot undo ${info.uuid} now`, { reason: 'undo unavailable' });
      }
      write({ ...base, outcome: 'ok' });
      return { undone: true };
    }
    if (plan.hangExecute?.service === service && info.attempt <= plan.hangExecute.attempts) {
      write({ ...base, outcome: 'hung' });
      return new Promise(() => undefined);
    }
    if (plan.refuseExecute === service) {
      write({ ...base, outcome: 'refused' });
      throw new SagaBusinessError(`${service} refuses ${info.uuid}`, { reason: `${service} says no` });
    }
    write({ ...base, outcome: 'ok' });
    const answer = { ref: `${service}-${info.uuid}` };
    if (service === 'inventory' && plan.related?.length) return new SagaResponse({ requestId: info.requestId, content: answer, relatedServices: plan.related });
    return answer;
  };
}

function hooksOf(service: string): { onReserve: TransactionHook; onCommit: TransactionHook; onReject: TransactionHook } {
  const held = effects[service]!;
  const entry = (transactionId: string, info: ParticipantRequestInfo, started: number) => ({
    kind: 'hook' as const,
    uuid: transactionId,
    service,
    phase: info.phase as 'reserve' | 'commit' | 'reject',
    attempt: info.attempt,
    requestId: info.requestId,
    ms: Date.now() - started,
  });
  return {
    async onReserve(transactionId, info) {
      const started = Date.now();
      const plan = plans.get(transactionId) ?? {};
      if (plan.slowReserve?.service === service) await sleep(plan.slowReserve.ms);
      if (plan.voteNo?.service === service) {
        write({ ...entry(transactionId, info, started), outcome: 'no' });
        if (plan.voteNo.how === 'throw') throw new SagaBusinessError(`${service} cannot hold ${transactionId}`, { reason: 'out of stock', service });
        if (plan.voteNo.how === 'crash') throw new Error(`${service}'s stock database is down`);
        return false;
      }
      held.reserved.add(transactionId);
      write({ ...entry(transactionId, info, started), outcome: 'yes' });
      return true;
    },
    // Idempotent by transaction id, as the SDK asks: a commit made before is not made again.
    async onCommit(transactionId, info) {
      const started = Date.now();
      const plan = plans.get(transactionId) ?? {};
      const run = nextRun(`${service} commit ${transactionId}`);
      if (plan.lateCommit?.service === service && run <= plan.lateCommit.times) await sleep(plan.lateCommit.ms);
      if (plan.failCommit?.service === service && run <= plan.failCommit.times) {
        write({ ...entry(transactionId, info, started), outcome: 'failed' });
        throw new Error(`${service} could not commit ${transactionId} (run ${run})`);
      }
      const already = held.committed.has(transactionId);
      held.committed.add(transactionId);
      write({ ...entry(transactionId, info, started), outcome: already ? 'already' : 'applied' });
    },
    async onReject(transactionId, info) {
      const started = Date.now();
      const already = held.rejected.has(transactionId);
      held.rejected.add(transactionId);
      held.reserved.delete(transactionId);
      write({ ...entry(transactionId, info, started), outcome: already ? 'already' : 'applied' });
    },
  };
}

const participants = await Promise.all(
  TX_ALL_SERVICES.map((service) =>
    connectParticipant({
      url,
      service,
      token: tokens[service] ?? '',
      // The whole service: `<service>.do` and `<service>.undo` (audit has no steps of its own).
      handlers: { [service]: service === TX_RELATED ? () => null : handlerOf(service) },
      ...hooksOf(service),
      instance: `${service}-${process.pid}`,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      logger,
    }),
  ),
);
process.stdout.write('READY\n');

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, arg] = line.split(' ');
  if (command !== 'SYNC') return;
  const stats = Object.fromEntries(participants.map((p) => [p.service, { ...p.stats, connected: p.connected }]));
  const held = Object.fromEntries(Object.entries(effects).map(([s, e]) => [s, { reserved: [...e.reserved], committed: [...e.committed], rejected: [...e.rejected] }]));
  process.stdout.write(`SYNCED ${JSON.stringify({ n: Number(arg), stats, effects: held })}\n`);
});

const stop = async () => {
  await Promise.all(participants.map((p) => p.close()));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
