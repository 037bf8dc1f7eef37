import { InMemorySagaRepository, type SagaRecord } from '../../src/index.js';
import { parseRecord } from '../../src/repositories/parse-record.js';

/**
 * An in-memory repository whose stored text a test can break, as a disk or a Redis can be edited
 * behind a durable repository's back. A corrupted execution is read through the same
 * `parseRecord` as every repository's, so it fails as a broken record would; a later store or
 * delete of it replaces the broken text, as it would replace a file.
 *
 * @example
 * ```ts
 * const repository = new CorruptibleInMemoryRepository();
 * await repository.corrupt(uuid, '{"format":1, broken');
 * await repository.load(uuid); // throws SagaSnapshotError
 * ```
 */
export class CorruptibleInMemoryRepository extends InMemorySagaRepository {
  readonly #broken = new Map<string, string>();

  /** Replaces the stored text of an execution that exists (an unknown one stays unknown). */
  async corrupt(uuid: string, json: string): Promise<void> {
    if ((await super.load(uuid)) !== null) this.#broken.set(uuid, json);
  }

  override async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    await super.store(record, expectedVersion);
    this.#broken.delete(record.uuid);
  }

  override async load(uuid: string): Promise<SagaRecord | null> {
    const text = this.#broken.get(uuid);
    return text === undefined ? super.load(uuid) : parseRecord(uuid, text, 'its stored record');
  }

  override async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    const plain = await super.loadMany(uuids);
    return uuids.map((uuid, i) => {
      const text = this.#broken.get(uuid);
      return text === undefined ? plain[i]! : parseRecord(uuid, text, 'its stored record');
    });
  }

  override async delete(uuid: string): Promise<boolean> {
    this.#broken.delete(uuid);
    return super.delete(uuid);
  }
}
