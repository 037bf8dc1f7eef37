import type { CompiledSaga } from '../../machines/compile.js';
import { isAwaitingCommit } from '../../machines/read.js';
import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import { previewJson } from '../json.js';
import type { SagaRecord } from '../repositories/saga-repository.js';
import { SagaExecution, type SagaExecutionControls } from './saga-execution.js';
import type { RestPoint } from './waiters.js';

/**
 * How a stored record reads, without restoring anything: its status, whether it awaits a commit
 * decision, and its view, from the snapshot's value and context and the tags of that state on
 * the definition's table. Throws `SagaSnapshotError` for a snapshot that is not one of `definition`.
 */
export function restPointOf(definition: CompiledSaga, record: SagaRecord, controls: SagaExecutionControls): RestPoint {
  const snapshot = record.snapshot as { value?: unknown; context?: unknown } | null;
  const leaf = definition.table.leafOf(snapshot?.value);
  const context = snapshot?.context as { uuid?: unknown } | undefined;
  if (!leaf || typeof context !== 'object' || context === null || context.uuid !== record.uuid) {
    throw new SagaSnapshotError(record.uuid, `its snapshot is not one of ${definition.machine.id} (state ${previewJson(snapshot?.value)})`);
  }
  const like = { value: leaf.value, context: context as never, hasTag: (tag: string) => leaf.tags.has(tag) };
  return { status: record.status, awaitingCommit: isAwaitingCommit(like), view: () => new SagaExecution(definition, like, controls) };
}
