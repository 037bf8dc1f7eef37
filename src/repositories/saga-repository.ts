import type { OutgoingRequest } from '../messages/outgoing-request.js';
import type { SagaTimer } from '../messages/saga-timer.js';
import type { SagaStatus } from '../status.js';

/** Version of the stored envelope; a reader refuses formats it does not know. */
export const RECORD_FORMAT = 1;

/**
 * One stored execution: an envelope around the XState persisted snapshot. The snapshot holds
 * neither the machine id nor its version, so the envelope names the saga and the definition hash
 * it started on; `outbox` and `timer` are read off the snapshot when it is stored, so that
 * recovery can re-send and re-arm without restoring it.
 */
export interface SagaRecord {
  format: typeof RECORD_FORMAT;
  uuid: string;
  sagaName: string;
  definitionHash: string;
  /** Compare-and-set version: 1 for the first store, +1 for each store after. */
  version: number;
  status: SagaStatus;
  createdAt: number;
  updatedAt: number;
  /** `actor.getPersistedSnapshot()`, JSON. */
  snapshot: unknown;
  /** Requests the execution waits on: sent after the store, re-sent by `recover()`. */
  outbox: OutgoingRequest[];
  /** The deadline the execution waits on (a timeout or a retry backoff), or `null`. */
  timer: SagaTimer | null;
}

/** What `list()` returns for each execution. */
export type SagaRecordSummary = Pick<SagaRecord, 'uuid' | 'sagaName' | 'definitionHash' | 'version' | 'status' | 'createdAt' | 'updatedAt'> & {
  /** When the execution's timer is due (`timer.at`), or `null`. */
  deadline: number | null;
};

/** Filter of `list()`. All fields are optional and combine with AND. */
export interface SagaListFilter {
  status?: SagaStatus | readonly SagaStatus[];
  sagaName?: string;
  /** Created at or after this time (ms since the epoch). */
  createdAfter?: number;
  /** Created before this time. */
  createdBefore?: number;
  /** Page size. @defaultValue 100 */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string | null;
}

/** A page of `list()`: newest first; `cursor` is `null` on the last page. */
export interface SagaListPage {
  items: SagaRecordSummary[];
  /**
   * Opaque; names the last item returned (not a position), so paging stays exact while
   * executions are created and deleted between pages. Pass it back as `filter.cursor`.
   */
  cursor: string | null;
}

/**
 * Where executions are kept. Every store is a compare-and-set on the execution's version, so two
 * managers can never both apply a transition to one execution.
 *
 * @example
 * ```ts
 * await repo.store({ ...record, version: 1 }, null); // create
 * await repo.store({ ...record, version: 2 }, 1);    // SagaVersionConflictError if someone else stored 2
 * const [a, b] = await repo.loadMany([record.uuid, 'unknown']); // b === null
 * ```
 */
export interface SagaRepository {
  /**
   * Stores `record` if the stored version is `expectedVersion` (`null`: must not exist yet).
   * `record.version` must be `expectedVersion + 1` (or 1): `RangeError` otherwise. Throws
   * `SagaVersionConflictError` when another writer got there first. The record is copied when
   * called: changing the object afterwards changes nothing stored.
   */
  store(record: SagaRecord, expectedVersion: number | null): Promise<void>;
  /** The stored record, or `null`. Throws `SagaSnapshotError` when it cannot be read. */
  load(uuid: string): Promise<SagaRecord | null>;
  /**
   * The stored records of `uuids`, in the same order as given, `null` for an unknown one (a uuid
   * given twice is answered twice). For recovery, which reads many executions at once: a
   * repository reads them together rather than one round trip each. Throws `SagaSnapshotError`
   * when one of them cannot be read, like `load()`.
   */
  loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>>;
  /** Removes an execution; returns whether it existed. */
  delete(uuid: string): Promise<boolean>;
  /** A page of summaries matching `filter`, newest first (ties: uuid descending). */
  list(filter?: SagaListFilter): Promise<SagaListPage>;
  /** How many executions are stored in each status (for dashboards and metrics; optional for a repository of your own). */
  count?(): Promise<Record<SagaStatus, number>>;
  /** Stops the repository's timers and releases what it opened (a directory lock, its own connection). */
  close(): Promise<void>;
}

/** Checks the version rule shared by every repository: `record.version` must be `expectedVersion + 1` (or 1). */
export function checkNextVersion(record: SagaRecord, expectedVersion: number | null): void {
  const want = (expectedVersion ?? 0) + 1;
  if (record.version !== want) {
    throw new RangeError(`record.version must be ${want} when storing over version ${expectedVersion ?? 'none'}, got ${record.version}.`);
  }
}

/** The summary fields of a record. */
export function summarize(record: SagaRecord): SagaRecordSummary {
  const { uuid, sagaName, definitionHash, version, status, createdAt, updatedAt, timer } = record;
  return { uuid, sagaName, definitionHash, version, status, createdAt, updatedAt, deadline: timer?.at ?? null };
}

/** Whether a summary passes a filter (for repositories that filter in memory). */
/** Counts summaries by status: the `count()` of repositories that hold their summaries in memory. */
export function countByStatus(summaries: Iterable<SagaRecordSummary>): Record<SagaStatus, number> {
  const counts: Record<SagaStatus, number> = { created: 0, running: 0, paused: 0, finished: 0, errored: 0 };
  for (const s of summaries) counts[s.status]++;
  return counts;
}

export function matchesFilter(s: SagaRecordSummary, filter: SagaListFilter): boolean {
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === 'string' ? [filter.status] : filter.status;
    if (!statuses.includes(s.status)) return false;
  }
  if (filter.sagaName !== undefined && s.sagaName !== filter.sagaName) return false;
  if (filter.createdAfter !== undefined && s.createdAt < filter.createdAfter) return false;
  if (filter.createdBefore !== undefined && s.createdAt >= filter.createdBefore) return false;
  return true;
}
