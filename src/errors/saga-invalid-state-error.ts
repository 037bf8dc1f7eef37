import { SagaError } from './saga-error.js';

/**
 * An operation does not fit the execution's current state, e.g. `commit()` on an execution that
 * is not waiting for a commit decision, or a retry of a compensation that did not fail.
 *
 * @example
 * ```ts
 * await execution.commit(); // throws SagaInvalidStateError unless run with autocommit: false
 * ```
 */
export class SagaInvalidStateError extends SagaError {
  readonly uuid: string;
  constructor(uuid: string, message: string) {
    super('SAGA_INVALID_STATE', `Execution '${uuid}': ${message}`);
    this.uuid = uuid;
  }
}
