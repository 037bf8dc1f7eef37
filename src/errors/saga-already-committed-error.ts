import { SagaError } from './saga-error.js';

/**
 * A step or hook was added to a saga after `commit()`.
 *
 * @example
 * ```ts
 * saga.commit();
 * saga.localStep(); // throws SagaAlreadyCommittedError
 * ```
 */
export class SagaAlreadyCommittedError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string) {
    super(
      'SAGA_ALREADY_COMMITTED',
      `Saga '${sagaName}' is already committed and cannot change. Build a new Saga (or a new version of it) instead.`,
    );
    this.sagaName = sagaName;
  }
}
