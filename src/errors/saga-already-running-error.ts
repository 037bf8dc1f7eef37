import { SagaError } from './saga-error.js';

/**
 * `run()` was given the uuid of an execution that already exists: one running in this manager,
 * or one stored in the repository (by this manager earlier, or by another).
 *
 * @example
 * ```ts
 * await manager.run(ORDER, { uuid: 'order-42' });
 * await manager.run(ORDER, { uuid: 'order-42' }); // throws SagaAlreadyRunningError
 * ```
 */
export class SagaAlreadyRunningError extends SagaError {
  readonly uuid: string;
  constructor(uuid: string) {
    super('SAGA_ALREADY_RUNNING', `An execution with uuid '${uuid}' already exists; run the saga with another uuid (or none, for a new one), or follow this one with manager.waitFor('${uuid}').`);
    this.uuid = uuid;
  }
}
