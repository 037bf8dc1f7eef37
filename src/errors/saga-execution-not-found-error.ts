import { SagaError } from './saga-error.js';

/**
 * No execution with this uuid exists in the repository (never run, or expired).
 *
 * @example
 * ```ts
 * await manager.get('0000-...') // throws SagaExecutionNotFoundError
 * ```
 */
export class SagaExecutionNotFoundError extends SagaError {
  readonly uuid: string;
  constructor(uuid: string) {
    super('SAGA_EXECUTION_NOT_FOUND', `No saga execution with uuid '${uuid}'. Check the uuid, or list executions with manager.list().`);
    this.uuid = uuid;
  }
}
