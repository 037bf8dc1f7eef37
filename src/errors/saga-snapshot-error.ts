import { SagaError } from './saga-error.js';

/**
 * A stored execution cannot be read back: malformed JSON, an unknown format version, or a
 * snapshot that XState refuses to restore.
 *
 * @example
 * ```ts
 * await manager.get(uuid); // throws SagaSnapshotError when the stored record is broken
 * ```
 */
export class SagaSnapshotError extends SagaError {
  readonly uuid: string;
  constructor(uuid: string, message: string, options?: { cause?: unknown }) {
    super('SAGA_SNAPSHOT_INVALID', `Execution '${uuid}' has a broken snapshot: ${message}. Inspect it with 'sagachart show ${uuid}' and resolve it by hand.`, options);
    this.uuid = uuid;
  }
}
