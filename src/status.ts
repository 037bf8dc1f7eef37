/**
 * Status of a saga execution. The top level of every compiled statechart mirrors it: `created`,
 * `running`, `finished` and `errored` are state values, `paused` is a tag carried by every state
 * in which the execution waits for something outside it (a response, a timer, a commit decision).
 *
 * @example
 * ```ts
 * if (execution.status === SagaStatus.Paused) console.log('waiting for a participant');
 * ```
 */
export const SagaStatus = {
  Created: 'created',
  Running: 'running',
  Paused: 'paused',
  Finished: 'finished',
  Errored: 'errored',
} as const;
export type SagaStatus = (typeof SagaStatus)[keyof typeof SagaStatus];

/** The statuses an execution ends in: nothing moves it on by itself any more. */
export const FINAL_STATUSES: ReadonlySet<SagaStatus> = new Set([SagaStatus.Finished, SagaStatus.Errored]);

/** Whether an execution with this status has ended (`finished` or `errored`). */
export function isFinalStatus(status: string): boolean {
  return status === SagaStatus.Finished || status === SagaStatus.Errored;
}

/**
 * Status of one step of an execution. Each value is a sub-state of the step's state in the
 * compiled statechart (the names are the state keys), so the inspector shows it as it happens.
 *
 * @example
 * ```ts
 * execution.steps.filter((s) => s.status === SagaStepStatus.ErroredOnFailure); // stuck compensations
 * ```
 */
export const SagaStepStatus = {
  Created: 'created',
  RunningOnExecute: 'running-on-execute',
  FinishedOnExecute: 'finished-on-execute',
  ErroredOnExecute: 'errored-on-execute',
  PausedByOnExecute: 'paused-by-on-execute',
  ErroredByOnExecute: 'errored-by-on-execute',
  RunningOnFailure: 'running-on-failure',
  PausedOnFailure: 'paused-on-failure',
  ErroredOnFailure: 'errored-on-failure',
  RunningOnSuccess: 'running-on-success',
  ErroredOnSuccess: 'errored-on-success',
  RunningOnError: 'running-on-error',
  ErroredOnError: 'errored-on-error',
  Finished: 'finished',
} as const;
export type SagaStepStatus = (typeof SagaStepStatus)[keyof typeof SagaStepStatus];

