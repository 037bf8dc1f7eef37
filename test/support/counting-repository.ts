import {
  SagaVersionConflictError,
  type SagaListFilter,
  type SagaListPage,
  type SagaRecord,
  type SagaRepository,
} from '../../src/index.js';

/**
 * A repository that delegates to another and records every store: the successful ones as
 * `{ uuid, version }`, and the compare-and-set conflicts it threw. For tests that count stored
 * transitions across several managers. `gate()` holds back the stores of chosen executions until
 * `open()`, so that a test can release several stores at one chosen moment.
 */
export class CountingRepository implements SagaRepository {
  readonly stored: Array<{ uuid: string; version: number }> = [];
  readonly conflicts: Array<{ uuid: string; version: number; expected: number | null; actual: number | null }> = [];
  /** The records whose store threw a version conflict, in the same order as `conflicts`. */
  readonly conflictRecords: SagaRecord[] = [];
  /** Any other store failure (not a version conflict). */
  readonly failures: Array<{ uuid: string; version: number; error: unknown }> = [];

  /** Stores handed to the inner repository and not answered yet. */
  inFlight = 0;
  /** Stores waiting at the gate (see `gate()`). */
  gated = 0;
  #gate: { uuids: ReadonlySet<string>; opened: Promise<void>; open: () => void } | undefined;

  constructor(readonly inner: SagaRepository) {}

  /** Holds back the stores of these executions until `open()`: they wait before reaching the inner repository. */
  gate(uuids: ReadonlySet<string>): void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { uuids, opened, open };
  }

  /** Lets the held-back stores through, all at once. */
  open(): void {
    const gate = this.#gate;
    this.#gate = undefined;
    gate?.open();
  }

  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    const gate = this.#gate;
    if (gate?.uuids.has(record.uuid)) {
      this.gated++;
      await gate.opened;
      this.gated--;
    }
    this.inFlight++;
    try {
      await this.inner.store(record, expectedVersion);
    } catch (err) {
      if (err instanceof SagaVersionConflictError) {
        this.conflicts.push({ uuid: record.uuid, version: record.version, expected: expectedVersion, actual: err.actual });
        this.conflictRecords.push(record);
      }
      else this.failures.push({ uuid: record.uuid, version: record.version, error: err });
      throw err;
    } finally {
      this.inFlight--;
    }
    this.stored.push({ uuid: record.uuid, version: record.version });
  }

  load(uuid: string): Promise<SagaRecord | null> {
    return this.inner.load(uuid);
  }

  loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    return this.inner.loadMany(uuids);
  }

  delete(uuid: string): Promise<boolean> {
    return this.inner.delete(uuid);
  }

  list(filter?: SagaListFilter): Promise<SagaListPage> {
    return this.inner.list(filter);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
