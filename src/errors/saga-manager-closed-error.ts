import { SagaError } from './saga-error.js';

/**
 * The manager was closed; it takes no new work.
 *
 * @example
 * ```ts
 * await manager.close();
 * await manager.run(saga); // throws SagaManagerClosedError
 * ```
 */
export class SagaManagerClosedError extends SagaError {
  constructor() {
    super('SAGA_MANAGER_CLOSED', 'This SagaManager is closed. Create a new one to run sagas.');
  }
}
