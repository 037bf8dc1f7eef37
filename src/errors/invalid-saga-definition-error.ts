import { SagaError } from './saga-error.js';

/**
 * A saga definition has a bad value: a name with a reserved character, a negative timeout, a
 * retry policy with zero attempts, a branch that is not a committed saga.
 *
 * @example
 * ```ts
 * new Saga('x').remoteStep('a').timeout(-1); // throws InvalidSagaDefinitionError
 * ```
 */
export class InvalidSagaDefinitionError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string, message: string) {
    super('SAGA_INVALID_DEFINITION', `Saga '${sagaName}': ${message}`);
    this.sagaName = sagaName;
  }
}
