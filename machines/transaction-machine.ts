import { assign, setup } from 'xstate';
import type { Clock } from '../src/clock.js';
import { previewJson } from '../src/json.js';
import { TRANSACTION_STEP, transactionEffects as effects, transactionStep } from './effects.js';
import type { SagaMachineEvent, TransactionContext, TransactionInput, TransactionOutput, TransactionPart, TransactionRefusal } from './types.js';

type Reply = Extract<SagaMachineEvent, { type: 'saga.response' | 'saga.deadline' }>;
type TransactionEvent = Reply | Extract<SagaMachineEvent, { type: 'saga.retry-step' | 'saga.resolve-transaction' }>;
type Response = Extract<SagaMachineEvent, { type: 'saga.response' }>;
type Args = { context: TransactionContext; event: TransactionEvent };

/** The longest wait between two sends of a commit or a reject. */
const MAX_BACKOFF_MS = 60_000;

/** The part a response is for: its step names the service (`$tx/<service>`), its phase and attempt match, and it waits for one. */
function answeredPart({ context, event }: Args): TransactionPart | undefined {
  if (event.type !== 'saga.response' || event.phase !== context.phase) return undefined;
  return context.parts.find((p) => p.state === 'waiting' && p.attempt === event.attempt && transactionStep(p.service) === event.step);
}

/** Whether a deadline is the child's current one (a deadline of an older round is stale). */
const isDue = ({ context, event }: Args): boolean =>
  event.type === 'saga.deadline' && event.step === TRANSACTION_STEP && event.phase === context.phase && event.attempt === context.round;

/** The part an operator asks to send again: one that is not done. */
const retriedPart = ({ context, event }: Args): TransactionPart | undefined =>
  event.type === 'saga.retry-step' || event.type === 'saga.resolve-transaction' ? context.parts.find((p) => p.state !== 'done' && transactionStep(p.service) === event.step) : undefined;

const status = (args: Args): number | null => (args.event.type === 'saga.response' ? args.event.response.status : null);

function refusalOf(context: TransactionContext, part: TransactionPart, event: Response | null): TransactionRefusal {
  if (!event) {
    return { service: part.service, code: 'SAGA_COMMIT_TIMEOUT', message: `${part.service} did not answer the reserve of transaction ${context.uuid} within ${context.timeoutMs} ms` };
  }
  const { response } = event;
  const content = previewJson(response.content, 300);
  const why = response.error ? `${response.error.code}: ${response.error.message}` : content;
  return {
    service: part.service,
    code: response.status === 500 ? 'SAGA_COMMIT_SYSTEM_ERROR' : 'SAGA_COMMIT_REFUSED',
    message: `${part.service} refused to reserve transaction ${context.uuid} (${response.status}): ${why}`,
    answer: { status: response.status, content },
  };
}

/**
 * The child actor of one phase of the two-phase commit (minos `TransactionCommitter`): it sends
 * the phase's message to every service that took part, all at once, and waits for each answer.
 *
 * - `reserve`: every service must vote yes (answer 200) within `timeoutMs`; the first that
 *   refuses (400, 500) or does not answer in time ends the phase at once, not ok.
 * - `commit` and `reject`: sent again until every service has acknowledged (answered 200): after
 *   a doubling backoff when it failed, at once when it timed out. A decision once taken is carried
 *   out, whatever it takes.
 *
 * Each service's message is a request of its own (step `$tx/<service>`, its own attempt), declared
 * as effects like a remote step's: the runtime stores it in the outbox, sends it, and sends it
 * again after a restart. The child waits on one deadline, the earliest of its services'. When the
 * phase ends (or the parent leaves it) the child is stopped, and whatever it still waited on is void.
 */
export function createTransactionMachine(clock: Clock) {
  const backoff = (context: TransactionContext, part: TransactionPart) => Math.min(MAX_BACKOFF_MS, context.backoffMs * 2 ** Math.min(20, part.attempt - 1));

  /** A deadline came: in a reserve, a service that has not answered refuses; in a commit or reject, what is due is sent again. */
  const onDeadline = ({ context }: { context: TransactionContext }): Partial<TransactionContext> => {
    const now = clock.now();
    const round = context.round + 1;
    if (context.phase === 'reserve') {
      const late = context.parts.find((p) => p.state === 'waiting' && p.deadline <= now);
      if (!late) return { round };
      return { round, parts: context.parts.map((p) => (p === late ? { ...p, state: 'done', outcome: 'timeout' } : p)), refusal: refusalOf(context, late, null) };
    }
    return {
      round,
      parts: context.parts.map((p) =>
        p.state !== 'done' && p.deadline <= now ? { ...p, state: 'waiting', attempt: p.attempt + 1, deadline: now + context.timeoutMs, sentIn: round } : p,
      ),
    };
  };

  return setup({
    types: {
      context: {} as TransactionContext,
      input: {} as TransactionInput,
      events: {} as TransactionEvent,
      output: {} as TransactionOutput,
    },
  }).createMachine({
    id: 'transaction',
    context: ({ input }) => ({
      uuid: input.uuid,
      sagaName: input.sagaName,
      phase: input.phase,
      services: input.services,
      timeoutMs: input.timeoutMs,
      backoffMs: input.backoffMs,
      parts: input.services.map((service): TransactionPart => ({ service, attempt: 1, state: 'waiting', deadline: clock.now() + input.timeoutMs, sentIn: 0, outcome: 'pending' })),
      round: 0,
      refusal: null,
    }),
    initial: 'sending',
    states: {
      sending: {
        entry: effects.send,
        always: [
          { guard: ({ context }) => context.refusal !== null, target: 'refused' },
          { guard: ({ context }) => context.parts.every((p) => p.state === 'done'), target: 'done' },
        ],
        on: {
          'saga.response': [
            // A yes, or an acknowledgement: this service is done.
            {
              guard: (args) => answeredPart(args) !== undefined && status(args) === 200,
              actions: [
                assign(({ context, event }) => {
                  const part = answeredPart({ context, event })!;
                  return { parts: context.parts.map((p) => (p === part ? { ...p, state: 'done', outcome: context.phase === 'reserve' ? 'yes' : 'ack' } : p)) };
                }),
                effects.answered,
              ],
            },
            // A refusal to reserve ends the phase.
            {
              guard: (args) => answeredPart(args) !== undefined && args.context.phase === 'reserve',
              actions: assign(({ context, event }) => {
                const part = answeredPart({ context, event })!;
                return { parts: context.parts.map((p) => (p === part ? { ...p, state: 'done', outcome: 'no' } : p)), refusal: refusalOf(context, part, event as Response) };
              }),
            },
            // A commit or reject that failed is sent again after a backoff.
            {
              guard: (args) => answeredPart(args) !== undefined,
              actions: [
                assign(({ context, event }) => {
                  const part = answeredPart({ context, event })!;
                  const round = context.round + 1;
                  return { round, parts: context.parts.map((p) => (p === part ? { ...p, state: 'backoff', deadline: clock.now() + backoff(context, part) } : p)) };
                }),
                effects.answered,
              ],
            },
          ],
          'saga.deadline': { guard: isDue, actions: [assign(onDeadline), effects.send] },
          // An operator sends a service's message again now, as a new attempt.
          'saga.retry-step': {
            guard: (args) => retriedPart(args) !== undefined,
            actions: [
              assign(({ context, event }) => {
                const part = retriedPart({ context, event })!;
                const round = context.round + 1;
                return { round, parts: context.parts.map((p) => (p === part ? { ...p, state: 'waiting', attempt: p.attempt + 1, deadline: clock.now() + context.timeoutMs, sentIn: round } : p)) };
              }),
              effects.send,
            ],
          },
          // An operator marks a service's commit or reject as dealt with by hand: it is no longer waited on.
          'saga.resolve-transaction': {
            guard: (args) => args.context.phase !== 'reserve' && retriedPart(args) !== undefined,
            actions: [
              assign(({ context, event }) => {
                const part = retriedPart({ context, event })!;
                return { round: context.round + 1, parts: context.parts.map((p) => (p === part ? { ...p, state: 'done', outcome: 'resolved' } : p)) };
              }),
              effects.answered,
            ],
          },
        },
      },
      refused: { type: 'final' },
      done: { type: 'final' },
    },
    output: ({ context }): TransactionOutput => ({
      phase: context.phase,
      ok: context.refusal === null,
      parts: context.parts.map((p) => ({ service: p.service, outcome: p.outcome, attempts: p.attempt })),
      refusal: context.refusal,
    }),
  });
}
