import { SagaError } from './saga-error.js';

/**
 * A saga definition was run, compiled or nested before `commit()` froze it.
 *
 * @example
 * ```ts
 * const saga = new Saga('order').localStep().onExecute(fn);
 * await manager.run(saga); // throws SagaNotCommittedError: call saga.commit() first
 * ```
 */
export class SagaNotCommittedError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string) {
    super('SAGA_NOT_COMMITTED', `Saga '${sagaName}' is not committed. Call .commit() at the end of its definition before running it.`);
    this.sagaName = sagaName;
  }
}
