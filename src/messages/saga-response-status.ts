/**
 * Status of a participant's response. `SUCCESS` runs the step's `onSuccess`, `ERROR` (a business
 * refusal) its `onError`, and `SYSTEM_ERROR` (the participant failed) is retried per the step's
 * retry policy, then fails the step.
 *
 * @example
 * ```ts
 * new SagaResponse({ requestId, status: SagaResponseStatus.ERROR, content: { reason: 'declined' } });
 * ```
 */
export const SagaResponseStatus = {
  SUCCESS: 200,
  ERROR: 400,
  SYSTEM_ERROR: 500,
} as const;
export type SagaResponseStatus = (typeof SagaResponseStatus)[keyof typeof SagaResponseStatus];

/** Whether `value` is one of the three response statuses. */
export function isSagaResponseStatus(value: unknown): value is SagaResponseStatus {
  return value === 200 || value === 400 || value === 500;
}
