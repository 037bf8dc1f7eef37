import { SagaError } from './saga-error.js';

/**
 * A local or remote step has no `onExecute` handler.
 *
 * @example
 * ```ts
 * new Saga('x').localStep('a').onFailure(undo).commit(); // throws UndefinedOnExecuteError
 * ```
 */
export class UndefinedOnExecuteError extends SagaError {
  readonly sagaName: string;
  readonly step: string;
  constructor(sagaName: string, step: string) {
    super('SAGA_UNDEFINED_ON_EXECUTE', `Step '${step}' of saga '${sagaName}' has no onExecute handler. Add .onExecute(fn) to it.`);
    this.sagaName = sagaName;
    this.step = step;
  }
}
