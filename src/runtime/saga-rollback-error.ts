import { SagaFailedExecutionError } from './saga-failed-execution-error.js';
import type { SagaExecution } from './saga-execution.js';

/**
 * A rollback asked for (`reject()`, `rollback()`, `abort()`) ended, but some compensations
 * failed and are not resolved (minos `SagaRollbackExecutionException`): the participants may
 * still hold what those steps did. Retry them with `retryCompensation(uuid, step)` once the
 * cause is fixed, or mark them dealt with by hand with `resolveCompensation(uuid, step)`.
 *
 * @example
 * ```ts
 * try { await manager.abort(uuid); } catch (err) {
 *   if (err instanceof SagaRollbackError) for (const step of err.steps) await manager.retryCompensation(uuid, step);
 * }
 * ```
 */
export class SagaRollbackError extends SagaFailedExecutionError {
  /** Paths of the steps whose compensation failed. */
  readonly steps: readonly string[];
  constructor(execution: SagaExecution, steps: readonly string[]) {
    super(
      execution,
      'SAGA_ROLLBACK_FAILED',
      `Saga '${execution.sagaName}' execution ${execution.uuid} was rolled back, but the compensation of ${steps.map((s) => `'${s}'`).join(', ')} failed. Retry it with retryCompensation(uuid, step) once the cause is fixed, or mark it done by hand with resolveCompensation(uuid, step).`,
    );
    this.steps = steps;
  }
}
