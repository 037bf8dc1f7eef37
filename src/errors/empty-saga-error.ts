import { SagaError } from './saga-error.js';

/**
 * A saga was committed (or run) without a single step.
 *
 * @example
 * ```ts
 * new Saga('empty').commit(); // throws EmptySagaError
 * ```
 */
export class EmptySagaError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string) {
    super(
      'SAGA_EMPTY',
      `Saga '${sagaName}' has no steps. Add one with localStep(), remoteStep() or conditionalStep() before commit().`,
    );
    this.sagaName = sagaName;
  }
}
