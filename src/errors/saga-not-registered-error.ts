import { SagaError } from './saga-error.js';

/**
 * A stored execution names a saga that this manager does not know.
 *
 * @example
 * ```ts
 * new SagaManager({ sagas: [] }).recover(); // an execution of 'order' → SagaNotRegisteredError
 * ```
 */
export class SagaNotRegisteredError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string) {
    super('SAGA_NOT_REGISTERED', `Saga '${sagaName}' is not registered with this manager. Pass it in new SagaManager({ sagas: [...] }) or call manager.register(saga).`);
    this.sagaName = sagaName;
  }
}
