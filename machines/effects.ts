import type { OutgoingRequest } from '../src/messages/outgoing-request.js';
import { formatRequestId } from '../src/messages/request-id.js';
import type { SagaTimer } from '../src/messages/saga-timer.js';
import { effectAction } from './table/effect-action.js';
import type { RemoteStepContext } from './types.js';

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
