import type { OutgoingRequest } from '../src/messages/outgoing-request.js';
import { formatRequestId } from '../src/messages/request-id.js';
import type { SagaTimer } from '../src/messages/saga-timer.js';
import { effectAction } from './table/effect-action.js';
import type { RemoteStepContext, TransactionContext, TransactionPart } from './types.js';

/**
 * What a saga's chart asks the runtime to do, besides running handlers. Every wait on the
 * outside world belongs to one remote-step child, named by `key` (the child's id): while it
 * waits, its request is in the outbox and its deadline armed; when it settles, both are void.
 */
export type SagaChartEffect =
  /** Send this request (after the store that puts it in the outbox). */
  | { kind: 'request'; key: string; request: OutgoingRequest }
  /** Deliver `timer.event` at `timer.at`; `null`: this wait has no deadline. */
  | { kind: 'timer'; key: string; timer: SagaTimer | null }
  /** The wait ended (answered, timed out, retried): its request and deadline are void. */
  | { kind: 'settled'; key: string };

/** The id of the child that waits for a remote step's phase: also the key of its effects. */
export const waitKey = (step: string, phase: string): string => `${step}:${phase}`;

/** The step a transaction child's deadline names; a service's part is `$tx/<service>`. */
export const TRANSACTION_STEP = '$tx';

/** The service a step names when it is a service's part of the two-phase commit (`$tx/<service>`), else `null`. */
export function transactionService(step: unknown): string | null {
  return typeof step === 'string' && step.startsWith(`${TRANSACTION_STEP}/`) ? step.slice(TRANSACTION_STEP.length + 1) : null;
}

/** The step of a service's part in the two-phase commit: what its requests and deadlines name. */
export const transactionStep = (service: string): string => `${TRANSACTION_STEP}/${service}`;

/** Whether an event's step names the two-phase commit: its deadline (`$tx`) or a service's part (`$tx/<service>`). */
export const isTransactionStep = (step: unknown): boolean => typeof step === 'string' && (step === TRANSACTION_STEP || step.startsWith(`${TRANSACTION_STEP}/`));

/** The id of the child that runs a phase of the two-phase commit (its parts' keys are `waitKey(transactionStep(service), phase)`). */
export const transactionChildId = (phase: string): string => `${TRANSACTION_STEP}:${phase}`;

/**
 * The effects an action declared, as a list: an effect action of a remote-step child declares
 * one, one of a transaction child may declare one per service.
 */
export function chartEffects(declared: unknown): SagaChartEffect[] {
  return Array.isArray(declared) ? (declared as SagaChartEffect[]) : [declared as SagaChartEffect];
}

/** The request a remote-step child in `waiting` holds: the one rule for building it. */
export function requestOf(c: RemoteStepContext): OutgoingRequest {
  return {
    requestId: formatRequestId({ uuid: c.uuid, step: c.step, phase: c.phase, attempt: c.attempt }),
    uuid: c.uuid,
    sagaName: c.sagaName,
    step: c.step,
    phase: c.phase,
    attempt: c.attempt,
    target: c.target,
    content: c.content,
    deadline: c.deadline,
    ...(c.user ? { user: c.user } : {}),
  };
}

/** The deadline a remote-step child waits on, or `null`. */
export function timerOf(c: RemoteStepContext): SagaTimer | null {
  return c.deadline === null ? null : { at: c.deadline, event: { type: 'saga.deadline', step: c.step, phase: c.phase, attempt: c.attempt } };
}

/** Effect actions of the remote-step machine. */
export const remoteStepEffects = {
  /** Entering `waiting`: the attempt's request goes out. */
  request: effectAction<RemoteStepContext, SagaChartEffect>(({ context: c }) => ({ kind: 'request', key: waitKey(c.step, c.phase), request: requestOf(c) })),
  /** Entering `waiting` or `backoff`: the deadline of the wait, if it has one. */
  timer: effectAction<RemoteStepContext, SagaChartEffect>(({ context: c }) => ({ kind: 'timer', key: waitKey(c.step, c.phase), timer: timerOf(c) })),
  /** Leaving `waiting` or `backoff`. */
  settled: effectAction<RemoteStepContext, SagaChartEffect>(({ context: c }) => ({ kind: 'settled', key: waitKey(c.step, c.phase) })),
};

/** The message a transaction child sends one service: the one rule for building it. */
export function transactionRequestOf(c: TransactionContext, part: TransactionPart): OutgoingRequest {
  const step = transactionStep(part.service);
  return {
    requestId: formatRequestId({ uuid: c.uuid, step, phase: c.phase, attempt: part.attempt }),
    uuid: c.uuid,
    sagaName: c.sagaName,
    step,
    phase: c.phase,
    attempt: part.attempt,
    target: part.service,
    content: { transactionId: c.uuid },
    deadline: part.deadline,
  };
}

/** The one deadline a transaction child waits on: the earliest of its parts' that are not done. */
export function transactionTimerOf(c: TransactionContext): SagaTimer | null {
  let at: number | null = null;
  for (const p of c.parts) if (p.state !== 'done' && (at === null || p.deadline < at)) at = p.deadline;
  return at === null ? null : { at, event: { type: 'saga.deadline', step: TRANSACTION_STEP, phase: c.phase, attempt: c.round } };
}

/** Whether a child id is a transaction phase's (`$tx:reserve`), which waits on one request per service. */
export const isTransactionChild = (id: string): boolean => id.startsWith(`${TRANSACTION_STEP}:`);

/**
 * Which child a wait belongs to: a remote-step child's key is its id; a service's part of a
 * transaction phase belongs to that phase's child. When a child stops, what it waited on is void.
 */
export function waitOwner(key: string): string {
  if (!key.startsWith(`${TRANSACTION_STEP}/`)) return key;
  return transactionChildId(key.slice(key.lastIndexOf(':') + 1));
}

const timerEffect = (c: TransactionContext): SagaChartEffect => ({ kind: 'timer', key: transactionChildId(c.phase), timer: transactionTimerOf(c) });

/** The part an event names (by its step), whatever its state. */
const namedPart = (c: TransactionContext, event: { type: string }): TransactionPart | undefined => {
  const step = (event as { step?: unknown }).step;
  return c.parts.find((p) => transactionStep(p.service) === step);
};

/** Effect actions of the transaction machine. */
export const transactionEffects = {
  /** Messages sent in this round (all of them on entry; those due on a deadline or retried), and the deadline. */
  send: effectAction<TransactionContext, SagaChartEffect[]>(({ context: c }) => [
    ...c.parts
      .filter((p) => p.state === 'waiting' && p.sentIn === c.round)
      .map((p): SagaChartEffect => ({ kind: 'request', key: waitKey(transactionStep(p.service), c.phase), request: transactionRequestOf(c, p) })),
    timerEffect(c),
  ]),
  /** The named part was answered: its message is void, and the deadline may move. */
  answered: effectAction<TransactionContext, SagaChartEffect[]>(({ context: c, event }) => {
    const part = namedPart(c, event);
    return [...(part ? [{ kind: 'settled', key: waitKey(transactionStep(part.service), c.phase) } as const] : []), timerEffect(c)];
  }),
};
