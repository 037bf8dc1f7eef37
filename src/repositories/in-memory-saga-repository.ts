import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import {
  checkNextVersion,
  matchesFilter,
  RECORD_FORMAT,
  summarize,
  type SagaListFilter,
  type SagaListPage,
  type SagaRecord,
  type SagaRepository,
} from './saga-repository.js';

/**
 * Keeps executions in this process, for tests and throw-away runs. Records are kept as JSON
 * text, as a durable store would, so a snapshot that does not survive JSON fails here too.
 *
 * @example
 * ```ts
 * const manager = new SagaManager({ repository: new InMemorySagaRepository(), broker, sagas: [ORDER] });
 * ```
 */
export class InMemorySagaRepository implements SagaRepository {
  readonly #rows = new Map<string, { version: number; json: string; createdAt: number }>();

  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    checkNextVersion(record, expectedVersion);
    const current = this.#rows.get(record.uuid);
    if ((current?.version ?? null) !== expectedVersion) {
      throw new SagaVersionConflictError(record.uuid, expectedVersion ?? 0, current?.version ?? null);
    }
    this.#rows.set(record.uuid, { version: record.version, json: JSON.stringify(record), createdAt: record.createdAt });
  }

  async load(uuid: string): Promise<SagaRecord | null> {
    const row = this.#rows.get(uuid);
    if (!row) return null;
    let record: SagaRecord;
    try {
      record = JSON.parse(row.json) as SagaRecord;
    } catch (err) {
      throw new SagaSnapshotError(uuid, 'the stored record is not JSON', { cause: err });
    }
    if (record.format !== RECORD_FORMAT) throw new SagaSnapshotError(uuid, `unknown record format ${String(record.format)}`);
    return record;
  }

  async delete(uuid: string): Promise<boolean> {
    return this.#rows.delete(uuid);
  }

  async list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    const limit = filter.limit ?? 100;
    // Newest first; the cursor is the position after the last item returned.
    const all = [...this.#rows.values()]
      .map((row) => summarize(JSON.parse(row.json) as SagaRecord))
      .filter((s) => matchesFilter(s, filter))
      .sort((a, b) => b.createdAt - a.createdAt || (a.uuid < b.uuid ? 1 : -1));
    const start = filter.cursor ? Number(filter.cursor) : 0;
    const items = all.slice(start, start + limit);
    return { items, cursor: start + limit < all.length ? String(start + limit) : null };
  }

  /** Test helper: replaces the stored text of an execution, e.g. with a broken snapshot. */
  corrupt(uuid: string, json: string): void {
    const row = this.#rows.get(uuid);
    if (row) row.json = json;
  }

  async close(): Promise<void> {}
}
