import { SagaError } from '../errors/saga-error.js';
import type { SagaExecution } from './saga-execution.js';

/**
 * Thrown by `manager.run()` (with `raiseOnError: true`, the default) and `waitFor()` when the
 * execution ended `errored`. The execution, with every step's status and error, is attached.
 *
 * @example
 * ```ts
 * try { await manager.run(saga); } catch (err) {
 *   if (err instanceof SagaFailedExecutionError) console.log(err.execution.steps);
 * }
 * ```
 */
export class SagaFailedExecutionError extends SagaError {
  readonly uuid: string;
  readonly execution: SagaExecution;
  constructor(execution: SagaExecution, code = 'SAGA_FAILED_EXECUTION', message?: string) {
    const cause = execution.error;
    const after =
      execution.status === 'errored'
        ? "Its executed steps were compensated; see error.execution.steps for each step's status."
        : `Its rollback is under way (status ${execution.status}); manager.waitFor(uuid) resolves once it has ended.`;
    super(code, message ?? `Saga '${execution.sagaName}' execution ${execution.uuid} failed${cause ? ` at step '${cause.step}' with ${cause.code}: ${cause.message}` : ''}. ${after}`);
    this.uuid = execution.uuid;
    this.execution = execution;
  }
}
