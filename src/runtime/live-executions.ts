import type { LiveExecution } from './live-execution.js';

/**
 * The executions in memory: the live ones (running, or waiting with `pauseOnDisk: false`), and a
 * bounded cache of the ones paused on disk, least recently stored dropped first, so that a
 * response soon after needs no read. The repository stays the truth: a cached copy may be behind
 * it (another manager moved the execution on), never ahead.
 */
export class LiveExecutions {
  readonly #live = new Map<string, LiveExecution>();
  readonly #paused = new Map<string, LiveExecution>();
  readonly #cacheSize: number;

  constructor(cacheSize: number) {
    this.#cacheSize = cacheSize;
  }

  /** Executions live in memory. */
  get size(): number {
    return this.#live.size;
  }

  /** Executions paused on disk that are also kept here. */
  get cachedSize(): number {
    return this.#paused.size;
  }

  live(uuid: string): LiveExecution | undefined {
    return this.#live.get(uuid);
  }

  isLive(uuid: string): boolean {
    return this.#live.has(uuid);
  }

  /** The cached copy of an execution paused on disk, left in the cache. */
  cached(uuid: string): LiveExecution | undefined {
    return this.#paused.get(uuid);
  }

  /** Whether this process holds the execution at all (live or cached). */
  holds(uuid: string): boolean {
    return this.#live.has(uuid) || this.#paused.has(uuid);
  }

  /** The execution in memory: live, or taken out of the cache to be live again. */
  take(uuid: string): { execution: LiveExecution; cached: boolean } | undefined {
    const live = this.#live.get(uuid);
    if (live) return { execution: live, cached: false };
    const cached = this.#paused.get(uuid);
    if (!cached) return undefined;
    this.#paused.delete(uuid);
    this.#live.set(uuid, cached);
    return { execution: cached, cached: true };
  }

  /** `execution` is live (replacing any cached copy). */
  add(execution: LiveExecution): void {
    this.#paused.delete(execution.uuid);
    this.#live.set(execution.uuid, execution);
  }

  /** Out of the live set, waiting paused on disk: kept in the cache, if it has room. */
  park(execution: LiveExecution): void {
    const { uuid } = execution;
    if (this.#live.get(uuid) === execution) this.#live.delete(uuid);
    if (this.#cacheSize <= 0) return;
    this.#paused.delete(uuid);
    this.#paused.set(uuid, execution);
    if (this.#paused.size > this.#cacheSize) this.#paused.delete(this.#paused.keys().next().value!);
  }

  /** Out of memory for good: ended, failed, or moved on by someone else. */
  drop(execution: LiveExecution): void {
    const { uuid } = execution;
    if (this.#live.get(uuid) === execution) this.#live.delete(uuid);
    if (this.#paused.get(uuid) === execution) this.#paused.delete(uuid);
  }

  /** Whatever this process holds of `uuid`, dropped (a copy found to be stale). */
  forget(uuid: string): void {
    this.#live.delete(uuid);
    this.#paused.delete(uuid);
  }

  clear(): void {
    this.#live.clear();
    this.#paused.clear();
  }
}
