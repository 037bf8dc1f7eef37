import type { TransactionRefusal } from '../../machines/types.js';
import { SagaFailedExecutionError } from './saga-failed-execution-error.js';
import type { SagaExecution } from './saga-execution.js';

/**
 * The two-phase commit of an execution failed: a service refused to reserve its transaction, or
 * did not answer within the saga's `commitTimeoutMs` (minos `SagaFailedCommitCallbackException`).
 * Every service that took part was told to reject, the steps were compensated, and the execution
 * ended `errored` (`SAGA_COMMIT_FAILED`). Thrown by `run()` (with `raiseOnError`) and `commit()`.
 *
 * @example
 * ```ts
 * try { await manager.run(CREATE_ORDER); } catch (err) {
 *   if (err instanceof SagaFailedCommitError) console.log(err.service, err.refusal.answer);
 * }
 * ```
 */
export class SagaFailedCommitError extends SagaFailedExecutionError {
  /** The service whose answer made the commit fail. */
  readonly service: string | null;
  /** Its answer (status and a preview of the content), or why there was none. */
  readonly refusal: TransactionRefusal | null;
  constructor(execution: SagaExecution) {
    const refusal = execution.transaction.reserve?.refusal ?? null;
    super(
      execution,
      'SAGA_FAILED_COMMIT',
      `Saga '${execution.sagaName}' execution ${execution.uuid} could not commit: ${refusal ? refusal.message : (execution.error?.message ?? 'the reserve failed')}. Every service that took part was told to reject its transaction, and the executed steps were compensated.`,
    );
    this.service = refusal?.service ?? null;
    this.refusal = refusal;
  }
}
