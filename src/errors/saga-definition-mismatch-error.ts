import { SagaError } from './saga-error.js';

/**
 * A stored execution was started on another version of its saga definition than any the
 * manager has registered. Register the old definition too, so that it finishes on the version it
 * started with.
 *
 * @example
 * ```ts
 * manager.register(orderSagaV1); // keeps running executions of the old shape restorable
 * ```
 */
export class SagaDefinitionMismatchError extends SagaError {
  readonly sagaName: string;
  readonly storedHash: string;
  readonly registeredHashes: readonly string[];
  constructor(sagaName: string, storedHash: string, registeredHashes: readonly string[]) {
    super(
      'SAGA_DEFINITION_MISMATCH',
      `Execution of saga '${sagaName}' was stored with definition ${storedHash}, but this manager has ${registeredHashes.length ? registeredHashes.join(', ') : 'no version of it'}. Register the definition the execution started with (manager.register(oldSaga)) so it can finish.`,
    );
    this.sagaName = sagaName;
    this.storedHash = storedHash;
    this.registeredHashes = registeredHashes;
  }
}
