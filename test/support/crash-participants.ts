// The participants of the crash test (test/chaos/crash-recovery.test.ts): one child process
// hosting the three services, never killed. Env: URL (the orchestrator's broker), TOKENS (JSON).
// Every handler execution writes one `LEDGER {json}` line to stdout (a duplicate request that the
// SDK answers from memory runs no handler, so it writes none), and every run of a two-phase-commit
// hook one `TX {json}` line. Prints `READY` once all three are
// connected the first time.
import { connectParticipant, SagaBusinessError, type ParticipantHandler, type ParticipantRequestInfo, type SagaLogger } from '../../src/index.js';
import { CRASH_SERVICES, CRASH_STEPS, failsAt, type LedgerEntry, type TransactionLedgerEntry } from './crash-saga.js';

const url = process.env.URL;
const tokens = JSON.parse(process.env.TOKENS ?? '{}') as Record<string, string>;
if (!url) {
  console.error('crash-participants: URL is required');
  process.exit(2);
}

const logger: SagaLogger = {
  warn: (message, fields) => console.error(`[participants] WARN ${message}`, JSON.stringify(fields ?? {})),
  error: (message, fields) => console.error(`[participants] ERROR ${message}`, JSON.stringify(fields ?? {})),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;

/** A handler that answers after 5–30 ms (so requests are in flight when the orchestrator dies). */
function handler(action: string, refuse: (index: number) => boolean, answer: (index: number) => object | null): ParticipantHandler {
  return async (content, info: ParticipantRequestInfo) => {
    const index = (content as { index: number }).index;
    await sleep(5 + Math.random() * 25);
    const refused = refuse(index);
    const entry: LedgerEntry = {
      requestId: info.requestId,
      uuid: info.uuid,
      step: info.step,
      phase: info.phase,
      attempt: info.attempt,
      action,
      index,
      outcome: refused ? 'refused' : 'ok',
    };
    process.stdout.write(`LEDGER ${JSON.stringify(entry)}\n`);
    if (refused) throw new SagaBusinessError(`order ${index} cannot be shipped`, { reason: 'no courier', index });
    return answer(index);
  };
}

const never = () => false;
const handlersOf = (service: string): Record<string, ParticipantHandler> => {
  const def = CRASH_STEPS.find((s) => s.service === service)!;
  const refuseExecute = def.step === 'ship' ? failsAt : never;
  return {
    [def.execute]: handler(def.execute, refuseExecute, (index) =>
      def.step === 'reserve' ? { reservationId: `r-${index}-${++seq}` } : def.step === 'charge' ? { chargeId: `c-${index}-${++seq}` } : { trackingId: `t-${index}` },
    ),
    [def.compensate]: handler(def.compensate, never, () => null),
  };
};

/** A hook that answers after 5–30 ms (so commits are in flight when the orchestrator dies), writing its ledger line. */
const transactionHook = (service: string) => async (transactionId: string, info: ParticipantRequestInfo) => {
  await sleep(5 + Math.random() * 25);
  const entry: TransactionLedgerEntry = { uuid: transactionId, service, phase: info.phase as TransactionLedgerEntry['phase'], attempt: info.attempt };
  process.stdout.write(`TX ${JSON.stringify(entry)}\n`);
};

const participants = await Promise.all(
  CRASH_SERVICES.map((service) =>
    connectParticipant({
      url,
      service,
      token: tokens[service] ?? '',
      handlers: handlersOf(service),
      onReserve: transactionHook(service),
      onCommit: transactionHook(service),
      onReject: transactionHook(service),
      instance: `${service}-${process.pid}`,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      logger,
    }),
  ),
);
process.stdout.write('READY\n');

const stop = async () => {
  await Promise.all(participants.map((p) => p.close()));
  process.stdout.write(`STATS ${JSON.stringify(Object.fromEntries(participants.map((p) => [p.service, p.stats])))}\n`);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
