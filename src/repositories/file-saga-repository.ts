import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { isFinalStatus, type SagaStatus } from '../status.js';
import { DirectoryLock } from './directory-lock.js';
import { errnoOf, removeFile, removeTempFiles, replaceFile, syncDirectory } from './durable-fs.js';
import { parseRecordFile, readRecordIndex, recordFileName } from './record-file.js';
import { listSummaries } from './list-summaries.js';
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
 * Options of {@link FileSagaRepository.open}. Retention is off by default because deleting an
 * execution loses its history; turn it on when the directory would otherwise grow for ever.
 *
 * @example
 * ```ts
 * const options: FileSagaRepositoryOptions = { dir: './data/sagas', retentionMs: 7 * 86_400_000, sweepIntervalMs: 3_600_000 };
 * ```
 */
export interface FileSagaRepositoryOptions {
  /**
   * Directory of the store, created if missing. One process owns it at a time (its `LOCK` file);
   * executions are kept in `executions/<uuid>.json` under it.
   */
  dir: string;
  /**
   * How often this process refreshes its `LOCK` (the file's mtime, set to the clock's time), in
   * ms: the heartbeat that tells other processes, on other hosts or in other containers too, that
   * the directory is still owned. @defaultValue 2000
   */
  lockRefreshMs?: number;
  /**
   * A `LOCK` not refreshed for longer than this (ms) is taken to be left by a process that is gone,
   * and taken over; at least twice `lockRefreshMs`. A process that stalls longer than this loses
   * the directory (its writes then fail with `SagaRepositoryLockLostError`), so leave room for GC
   * pauses and slow disks; hosts sharing the directory must have clocks that agree to well within
   * it. On the same machine and pid namespace, the `LOCK` of a process that is gone is taken over at
   * once. @defaultValue 15000
   */
  lockStaleMs?: number;
  /**
   * Keep `finished` and `errored` executions this long after their last update, then delete them.
   * Executions that are not done are never deleted. @defaultValue kept for ever
   */
  retentionMs?: number;
  /** How often expired executions are swept (only with `retentionMs`). @defaultValue 60000 */
  sweepIntervalMs?: number;
  /** Told about broken files skipped at open, stale locks taken over and a lost lock. @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
  /** Decides what is expired, drives the sweep and lock refresh timers and is the time written into the `LOCK`. @defaultValue the system clock */
  clock?: Clock;
}

const EXECUTIONS_DIR = 'executions';
/** Files read at once by `loadMany()`: enough to keep the disk busy, few enough not to run out of descriptors. */
const LOAD_CONCURRENCY = 32;
const DEFAULT_LOCK_REFRESH_MS = 2_000;
const DEFAULT_LOCK_STALE_MS = 15_000;

function checkOptions(options: FileSagaRepositoryOptions): void {
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new RangeError(`FileSagaRepository: dir must be a non-empty path, got ${JSON.stringify(options.dir)}.`);
  }
  if (options.retentionMs !== undefined && !(Number.isFinite(options.retentionMs) && options.retentionMs >= 0)) {
    throw new RangeError(`FileSagaRepository: retentionMs must be a number of ms >= 0, got ${options.retentionMs}.`);
  }
  if (options.sweepIntervalMs !== undefined && !(Number.isFinite(options.sweepIntervalMs) && options.sweepIntervalMs >= 1)) {
    throw new RangeError(`FileSagaRepository: sweepIntervalMs must be a number of ms >= 1, got ${options.sweepIntervalMs}.`);
  }
  const refreshMs = options.lockRefreshMs ?? DEFAULT_LOCK_REFRESH_MS;
  if (!(Number.isFinite(refreshMs) && refreshMs >= 10)) {
    throw new RangeError(`FileSagaRepository: lockRefreshMs must be a number of ms >= 10, got ${options.lockRefreshMs}.`);
  }
  const staleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
  if (!(Number.isFinite(staleMs) && staleMs >= 2 * refreshMs)) {
    throw new RangeError(
      `FileSagaRepository: lockStaleMs must be a number of ms at least twice lockRefreshMs (${refreshMs}), so that one late refresh does not lose the lock; got ${staleMs}.`,
    );
  }
}

/**
 * Keeps executions as files, one JSON file per execution: the embedded default, so that the demo
 * and small deployments need no server. It is built to survive `kill -9` or a power cut at any
 * instant: every write goes to a synced temp file that is renamed over the old one (readers and
 * restarts see the old record or the new, never a torn one), and the directory is synced so the
 * rename itself is durable.
 *
 * Compare-and-set is checked against an in-memory index, which is only sound while no one else
 * writes the directory, so `open()` takes the directory's `LOCK` (a second process gets
 * `SagaRepositoryLockedError`, on another host or in another container too). The owner refreshes
 * the LOCK every `lockRefreshMs`; one not refreshed for `lockStaleMs` (a crashed owner) is taken
 * over, and an owner whose LOCK was taken over fails its writes with `SagaRepositoryLockLostError`
 * rather than overwrite the new owner's files (see {@link DirectoryLock}). The same index
 * serves `list()` without reading files; records themselves are read from disk by `load()`, so
 * executions paused on disk cost no memory beyond their summary.
 *
 * @example
 * ```ts
 * const repository = await FileSagaRepository.open({ dir: './data/sagas', retentionMs: 7 * 86_400_000 });
 * const manager = new SagaManager({ repository, broker, sagas: [CREATE_ORDER] });
 * await manager.recover(); // carries on with what the last process left paused or running
 * ```
 */
export class FileSagaRepository implements SagaRepository {
  /** The absolute directory of the store. */
  readonly dir: string;
  readonly #files: string;
  readonly #lock: DirectoryLock;
  readonly #index: Map<string, SagaRecordSummary>;
  /** Files that could not be read at open: never overwritten by a store, so nothing is lost unseen. */
  readonly #broken: Set<string>;
  readonly #queue = new KeyedQueue();
  readonly #retentionMs: number | undefined;
  readonly #sweepMs: number;
  readonly #clock: Clock;
  readonly #log: SagaLogger;
  #sweepTimer: TimerHandle | undefined;
  #sweeping: Promise<number> | undefined;
  #closed = false;

  private constructor(
    dir: string,
    lock: DirectoryLock,
    read: { index: Map<string, SagaRecordSummary>; broken: Set<string> },
    options: FileSagaRepositoryOptions,
  ) {
    this.dir = dir;
    this.#files = join(dir, EXECUTIONS_DIR);
    this.#lock = lock;
    this.#index = read.index;
    this.#broken = read.broken;
    this.#retentionMs = options.retentionMs;
    this.#sweepMs = options.sweepIntervalMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? defaultLogger;
  }

  /**
   * Opens (creating if needed) the store in `options.dir`: takes its lock, removes temp files a
   * crash left behind, and reads every execution file into the index. Throws
   * `SagaRepositoryLockedError` when a live process holds the directory.
   */
  static async open(options: FileSagaRepositoryOptions): Promise<FileSagaRepository> {
    checkOptions(options);
    const dir = resolve(options.dir);
    const logger = options.logger ?? defaultLogger;
    const files = join(dir, EXECUTIONS_DIR);
    const created = await mkdir(files, { recursive: true });
    // A directory made just now must be synced into its parent, or a power cut can lose it whole.
    if (created !== undefined) for (let d = files; d !== dirname(created); d = dirname(d)) await syncDirectory(dirname(d));
    const lock = await DirectoryLock.acquire(dir, {
      logger,
      clock: options.clock ?? systemClock,
      refreshMs: options.lockRefreshMs ?? DEFAULT_LOCK_REFRESH_MS,
      staleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
    });
    try {
      const leftovers = [...(await removeTempFiles(dir)), ...(await removeTempFiles(files))];
      if (leftovers.length) logger.info?.('removed temp files left by an interrupted write', { dir, files: leftovers });
      const repository = new FileSagaRepository(dir, lock, await readRecordIndex(files, logger), options);
      repository.#armSweep();
      return repository;
    } catch (err) {
      await lock.release().catch(() => undefined);
      throw err;
    }
  }

  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    checkNextVersion(record, expectedVersion);
    const { uuid } = record;
    const path = this.#pathOf(uuid);
    // Serialised now: a caller that mutates its record after calling store() changes nothing.
    const json = JSON.stringify(record);
    const summary = summarize(record);
    await this.#run(uuid, async () => {
      if (this.#broken.has(uuid)) {
        throw new SagaSnapshotError(uuid, `its file '${path}' could not be read at open, so it is not overwritten; delete it to reuse the id`);
      }
      const actual = this.#index.get(uuid)?.version ?? null;
      if (actual !== expectedVersion) throw new SagaVersionConflictError(uuid, expectedVersion ?? 0, actual);
      await this.#lock.assertHeld();
      await replaceFile(path, json);
      // From the rename on, readers get the new version: the index must say so even if the sync fails.
      this.#index.set(uuid, summary);
      await syncDirectory(this.#files);
    });
  }

  async load(uuid: string): Promise<SagaRecord | null> {
    const path = this.#pathOf(uuid);
    return this.#run(uuid, async () => {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return null;
        throw err;
      }
      return parseRecordFile(uuid, text);
    });
  }

  /** Reads the files a few at a time, each in its execution's queue like `load()`. */
  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    this.#checkOpen();
    const out = new Array<SagaRecord | null>(uuids.length).fill(null);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < uuids.length) {
        const i = next++;
        out[i] = await this.load(uuids[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, uuids.length) }, worker));
    return out;
  }

  async delete(uuid: string): Promise<boolean> {
    const path = this.#pathOf(uuid);
    return this.#run(uuid, async () => {
      await this.#lock.assertHeld();
      const existed = await removeFile(path);
      this.#index.delete(uuid);
      this.#broken.delete(uuid);
      if (existed) await syncDirectory(this.#files);
      return existed;
    });
  }

  async list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    this.#checkOpen();
    return listSummaries(this.#index.values(), filter, 'FileSagaRepository');
  }

  async count(): Promise<Record<SagaStatus, number>> {
    this.#checkOpen();
    return countByStatus(this.#index.values());
  }

  /**
   * Deletes the `finished` and `errored` executions not updated for `retentionMs`, now rather than
   * at the next timed sweep; returns how many. Does nothing without `retentionMs`.
   */
  async sweep(): Promise<number> {
    if (this.#retentionMs === undefined || this.#closed) return 0;
    const cutoff = this.#clock.now() - this.#retentionMs;
    const expired = (s: SagaRecordSummary | undefined) => s !== undefined && isFinalStatus(s.status) && s.updatedAt < cutoff;
    let deleted = 0;
    for (const s of [...this.#index.values()]) {
      if (this.#closed) break;
      if (!expired(s)) continue;
      // Checked again in the execution's queue: a store may have come in since the scan.
      const removed = await this.#queue.run(s.uuid, async () => {
        if (!expired(this.#index.get(s.uuid))) return false;
        await this.#lock.assertHeld();
        const existed = await removeFile(this.#pathOf(s.uuid));
        this.#index.delete(s.uuid);
        return existed;
      });
      if (removed) deleted++;
    }
    // One directory sync for the batch: a deletion lost to a power cut is simply swept again.
    if (deleted) {
      await syncDirectory(this.#files);
      this.#log.info?.('deleted expired executions', { dir: this.dir, count: deleted });
    }
    return deleted;
  }

  /** Stops the sweep, lets queued operations finish and releases the directory's lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
    await this.#sweeping?.catch(() => undefined);
    await this.#queue.drain();
    await this.#lock.release();
  }

  // ---------------------------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) {
      throw new Error(`FileSagaRepository for '${this.dir}' is closed; open it again with FileSagaRepository.open() to use it.`);
    }
  }

  #pathOf(uuid: string): string {
    return join(this.#files, recordFileName(uuid));
  }

  #run<T>(uuid: string, task: () => Promise<T>): Promise<T> {
    this.#checkOpen();
    return this.#queue.run(uuid, task);
  }

  /** Chains one timer after each sweep (never an interval), so that a slow sweep never overlaps the next. */
  #armSweep(): void {
    // A repository that lost its lock writes nothing more, deletions included.
    if (this.#retentionMs === undefined || this.#closed || this.#lock.lost) return;
    const handle = this.#clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      const sweeping = this.sweep();
      this.#sweeping = sweeping;
      sweeping
        .catch((err: unknown) => {
          this.#log.warn?.('sweeping expired executions failed; trying again at the next interval', { dir: this.dir, error: String(err) });
          return 0;
        })
        .finally(() => {
          if (this.#sweeping === sweeping) this.#sweeping = undefined;
          this.#armSweep();
        });
    }, this.#sweepMs);
    // The sweep is housekeeping: it must not keep a process alive that has nothing else to do.
    (handle as { unref?: () => unknown } | null)?.unref?.();
    this.#sweepTimer = handle;
  }
}
