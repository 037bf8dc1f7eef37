import { SagaError } from './saga-error.js';

/**
 * A compare-and-set store lost a race: another writer stored this execution first.
 *
 * @example
 * ```ts
 * await repo.store(record, 3); // throws SagaVersionConflictError when the stored version is not 3
 * ```
 */
export class SagaVersionConflictError extends SagaError {
  readonly uuid: string;
  readonly expected: number;
  readonly actual: number | null;
  constructor(uuid: string, expected: number, actual: number | null) {
    super(
      'SAGA_VERSION_CONFLICT',
      `Execution '${uuid}' is at version ${actual ?? 'none'}, not ${expected}: another writer stored it first. Reload it and apply the change again.`,
    );
    this.uuid = uuid;
    this.expected = expected;
    this.actual = actual;
  }
}
