import type { StepPhase } from './request-id.js';

/** The event a due deadline sends to its execution: the attempt of the step whose wait ran out. */
export interface SagaDeadlineEvent {
  type: 'saga.deadline';
  step: string;
  phase: StepPhase;
  attempt: number;
}

/**
 * A deadline an execution waits on (a response timeout or a retry backoff): at `at`, `event` is
 * delivered to it. Stored with the execution as an absolute time, so it is re-armed after a restart.
 *
 * @example
 * ```ts
 * const timer: SagaTimer = { at: Date.now() + 5_000, event: { type: 'saga.deadline', step: 'charge', phase: 'execute', attempt: 1 } };
 * ```
 */
export interface SagaTimer {
  at: number;
  event: SagaDeadlineEvent;
}
