import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import { SagaStatus } from '../status.js';
import { RECORD_FORMAT, type SagaRecord } from './saga-repository.js';

const STATUSES: ReadonlySet<unknown> = new Set(Object.values(SagaStatus));

/**
 * Reads the stored JSON text of an execution back into a record, or throws `SagaSnapshotError`:
 * the one rule of what a readable record is, shared by every repository. The summary fields are
 * checked too, because `list()` serves them without reading the snapshot.
 *
 * @param where - how the message names the text, e.g. `'its file'` or `'its stored record'`.
 *
 * @example
 * ```ts
 * const record = parseRecord(uuid, await redis.hget(key, 'body'), 'its stored record');
 * ```
 */
export function parseRecord(uuid: string, text: string, where: string): SagaRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SagaSnapshotError(uuid, `${where} is not JSON (${text.length} bytes)`, { cause: err });
  }
  const r = value as Partial<SagaRecord> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new SagaSnapshotError(uuid, `${where} does not hold a JSON object`);
  if (r.format !== RECORD_FORMAT) throw new SagaSnapshotError(uuid, `unknown record format ${String(r.format)}`);
  if (r.uuid !== uuid) throw new SagaSnapshotError(uuid, `${where} holds execution ${JSON.stringify(r.uuid)}`);
  const valid =
    typeof r.sagaName === 'string' &&
    typeof r.definitionHash === 'string' &&
    Number.isSafeInteger(r.version) &&
    (r.version ?? 0) >= 1 &&
    STATUSES.has(r.status) &&
    Number.isFinite(r.createdAt) &&
    Number.isFinite(r.updatedAt) &&
    Array.isArray(r.outbox) &&
    (r.timer === null || Number.isFinite(r.timer?.at));
  if (!valid) throw new SagaSnapshotError(uuid, `${where}'s envelope lacks a field or has one of the wrong type`);
  return r as SagaRecord;
}
