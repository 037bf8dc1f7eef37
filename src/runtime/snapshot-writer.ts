import type { Clock } from '../clock.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { RECORD_FORMAT, type SagaRecord, type SagaRepository } from '../repositories/saga-repository.js';
import type { LiveExecution } from './live-execution.js';

/** How a store ended. */
export type StoreOutcome =
  | { kind: 'stored'; record: SagaRecord }
  /** Someone else stored this version first (another manager, or an earlier run with this uuid). */
  | { kind: 'conflict'; error: SagaVersionConflictError }
  | { kind: 'failed'; error: unknown };

/**
 * Writes an execution at a rest point: its persisted snapshot with its outbox and timer as one
 * record, compare-and-set on the version it was last stored at. Repositories that can (Redis)
 * put the stores of every execution that rests in the same tick into one call.
 */
export class SnapshotWriter {
  readonly #repository: SagaRepository;
  readonly #clock: Clock;

  constructor(repository: SagaRepository, clock: Clock) {
    this.#repository = repository;
    this.#clock = clock;
  }

  /** The record of `execution` as it is now, one version past the stored one. */
  record(execution: LiveExecution): SagaRecord {
    const definition = execution.definition;
    return {
      format: RECORD_FORMAT,
      uuid: execution.uuid,
      sagaName: definition.saga.name,
      definitionHash: definition.saga.hash,
      version: (execution.version ?? 0) + 1,
      status: execution.status,
      createdAt: execution.createdAt,
      updatedAt: this.#clock.now(),
      snapshot: definition.table.persist(execution.state),
      outbox: execution.outbox(),
      timer: execution.timer(),
    };
  }

  /** Stores `execution`; on success its version moves on. */
  async store(execution: LiveExecution): Promise<StoreOutcome> {
    const record = this.record(execution);
    try {
      await this.#repository.store(record, execution.version);
    } catch (error) {
      return error instanceof SagaVersionConflictError ? { kind: 'conflict', error } : { kind: 'failed', error };
    }
    execution.version = record.version;
    return { kind: 'stored', record };
  }
}
