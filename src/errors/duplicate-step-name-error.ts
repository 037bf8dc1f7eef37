import { SagaError } from './saga-error.js';

/**
 * Two steps of one saga have the same name (names id the states of the statechart).
 *
 * @example
 * ```ts
 * new Saga('x').localStep('a').onExecute(f).localStep('a'); // throws DuplicateStepNameError
 * ```
 */
export class DuplicateStepNameError extends SagaError {
  readonly sagaName: string;
  readonly step: string;
  constructor(sagaName: string, step: string) {
    super('SAGA_DUPLICATE_STEP_NAME', `Saga '${sagaName}' already has a step named '${step}'. Give every step of a saga its own name.`);
    this.sagaName = sagaName;
    this.step = step;
  }
}
