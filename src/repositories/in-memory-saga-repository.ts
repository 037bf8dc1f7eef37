import type { SagaStatus } from '../status.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { listSummaries } from './list-summaries.js';
import { parseRecord } from './parse-record.js';
import {
  checkNextVersion,
  countByStatus,
  summarize,
  type SagaListFilter,
  type SagaListPage,
  type SagaRecord,
  type SagaRecordSummary,
  type SagaRepository,
} from './saga-repository.js';

/**
 * Keeps executions in this process, for tests and throw-away runs. Records are kept as JSON
 * text, as a durable store would, so a snapshot that does not survive JSON fails here too. Paging
 * follows the same rule as the durable repositories: the cursor names the last item returned.
 *
 * @example
 * ```ts
 * const manager = new SagaManager({ repository: new InMemorySagaRepository(), broker, sagas: [ORDER] });
 * ```
 */
export class InMemorySagaRepository implements SagaRepository {
  readonly #rows = new Map<string, { json: string; summary: SagaRecordSummary }>();

  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    checkNextVersion(record, expectedVersion);
    const current = this.#rows.get(record.uuid);
    const actual = current?.summary.version ?? null;
    if (actual !== expectedVersion) throw new SagaVersionConflictError(record.uuid, expectedVersion ?? 0, actual);
    this.#rows.set(record.uuid, { json: JSON.stringify(record), summary: summarize(record) });
  }

  async load(uuid: string): Promise<SagaRecord | null> {
    return this.#read(uuid);
  }

  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    return uuids.map((uuid) => this.#read(uuid));
  }

  async delete(uuid: string): Promise<boolean> {
    return this.#rows.delete(uuid);
  }

  async list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    return listSummaries(
      (function* (rows) {
        for (const row of rows) yield row.summary;
      })(this.#rows.values()),
      filter,
      'InMemorySagaRepository',
    );
  }

  async count(): Promise<Record<SagaStatus, number>> {
    return countByStatus(
      (function* (rows) {
        for (const row of rows) yield row.summary;
      })(this.#rows.values()),
    );
  }

  async close(): Promise<void> {}

  #read(uuid: string): SagaRecord | null {
    const row = this.#rows.get(uuid);
    return row ? parseRecord(uuid, row.json, 'its stored record') : null;
  }
}
