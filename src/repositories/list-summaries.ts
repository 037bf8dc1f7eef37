import { matchesFilter, type SagaListFilter, type SagaListPage, type SagaRecordSummary } from './saga-repository.js';

/**
 * The order of `list()` in every repository: newest first; among equal `createdAt`, by uuid
 * descending, so that the order is total.
 *
 * @example
 * ```ts
 * summaries.sort(newestFirst);
 * ```
 */
export function newestFirst(a: SagaRecordSummary, b: SagaRecordSummary): number {
  return b.createdAt - a.createdAt || (a.uuid < b.uuid ? 1 : a.uuid > b.uuid ? -1 : 0);
}

/**
 * Checks `filter.limit` (default 100) for every repository: a whole number >= 1.
 *
 * @example
 * ```ts
 * const limit = pageLimit(filter, 'RedisSagaRepository'); // RangeError naming the repository for 0
 * ```
 */
export function pageLimit(filter: SagaListFilter, repository: string): number {
  const limit = filter.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`${repository}: limit must be a whole number >= 1, got ${limit}.`);
  return limit;
}

/** A cursor names the last item returned (`createdAt:uuid`), not a position, so it stays exact while records come and go. */
function decodeCursor(cursor: string, repository: string): { createdAt: number; uuid: string } {
  const colon = cursor.indexOf(':');
  const createdAt = Number(cursor.slice(0, colon));
  const uuid = cursor.slice(colon + 1);
  if (colon < 1 || !Number.isFinite(createdAt) || !uuid) {
    throw new RangeError(`${repository}: cursor ${JSON.stringify(cursor)} is not one list() returned; pass the cursor of the previous page, or null for the first.`);
  }
  return { createdAt, uuid };
}

/**
 * One page of `list()` over summaries held in memory (the in-memory and file repositories): the
 * items after the cursor that match the filter, newest first, as copies.
 *
 * @param repository - the class name, for error messages.
 *
 * @example
 * ```ts
 * return listSummaries(this.#index.values(), filter, 'FileSagaRepository');
 * ```
 */
export function listSummaries(summaries: Iterable<SagaRecordSummary>, filter: SagaListFilter, repository: string): SagaListPage {
  const limit = pageLimit(filter, repository);
  const after = filter.cursor ? decodeCursor(filter.cursor, repository) : null;
  const matching: SagaRecordSummary[] = [];
  for (const s of summaries) {
    if (after && !(s.createdAt < after.createdAt || (s.createdAt === after.createdAt && s.uuid < after.uuid))) continue;
    if (matchesFilter(s, filter)) matching.push(s);
  }
  matching.sort(newestFirst);
  const items = matching.slice(0, limit).map((s) => ({ ...s }));
  const last = items[items.length - 1];
  return { items, cursor: matching.length > limit && last ? `${last.createdAt}:${last.uuid}` : null };
}
