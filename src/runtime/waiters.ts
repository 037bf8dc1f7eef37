import { isFinalStatus, SagaStatus } from '../status.js';
import type { SagaExecution } from './saga-execution.js';

/**
 * What a caller waits for: the end (`final`); the end or a commit decision, or with `pauseOnDisk`
 * the first pause on disk (`run`); or the next store (`stored`).
 */
export type WaitUntil = 'final' | 'run' | 'run-paused' | 'stored';

/** An execution as a store (or a read of the repository) left it. */
export interface RestPoint {
  status: SagaStatus;
  awaitingCommit: boolean;
  view(): SagaExecution;
}

/** A registered waiter. */
export interface Waiting {
  promise: Promise<SagaExecution>;
  cancel(): void;
}

interface Waiter {
  until: WaitUntil;
  since: number;
  resolve(execution: SagaExecution): void;
  reject(err: unknown): void;
}

/** What the waiters see of the runtime. */
export interface WaitersContext {
  /** Whether the execution is in memory here (its stores notify; no need to poll). */
  isLive(uuid: string): boolean;
  /** The executions as stored, for those run elsewhere (another manager on the same repository). */
  read(uuids: readonly string[]): Promise<Array<RestPoint | null>>;
  now(): number;
  warn(message: string, fields: Record<string, unknown>): void;
}

const due = (until: WaitUntil, at: RestPoint): boolean =>
  until === 'stored' ||
  isFinalStatus(at.status) ||
  ((until === 'run' || until === 'run-paused') && at.awaitingCommit) ||
  (until === 'run-paused' && at.status === SagaStatus.Paused);

/**
 * The callers waiting on executions: `run()`, `waitFor()`, commit decisions and operator actions.
 * Stores here resolve them; for executions that are not in memory here, one poller reads the
 * repository for all of them at once, so a waiter follows an execution that another manager
 * moves on.
 */
export class Waiters {
  readonly #context: WaitersContext;
  readonly #pollMs: number;
  readonly #byUuid = new Map<string, Set<Waiter>>();
  #poller: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  constructor(context: WaitersContext, pollMs: number) {
    this.#context = context;
    this.#pollMs = pollMs;
  }

  /**
   * Waits until the execution reaches `until`: `promise` rejects on `fail()` or after `timeoutMs`;
   * `cancel()` withdraws this waiter alone (its promise never settles).
   */
  wait(uuid: string, until: WaitUntil, timeoutMs?: number, onTimeout?: () => unknown): Waiting {
    let cancel!: () => void;
    const promise = new Promise<SagaExecution>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: Waiter = {
        until,
        since: this.#context.now(),
        resolve: (execution) => {
          clearTimeout(timer);
          resolve(execution);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      let set = this.#byUuid.get(uuid);
      if (!set) this.#byUuid.set(uuid, (set = new Set()));
      set.add(waiter);
      cancel = () => {
        clearTimeout(timer);
        this.#drop(uuid, waiter);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#drop(uuid, waiter);
          reject(onTimeout?.());
        }, timeoutMs);
      }
      this.#armPoller();
    });
    return { promise, cancel };
  }

  /** Whether anyone waits on `uuid`. */
  has(uuid: string): boolean {
    return this.#byUuid.has(uuid);
  }

  /** The execution rested at `at`: resolves the waiters it makes due (a read, unlike a store, is no new store). */
  notify(uuid: string, at: RestPoint, read = false): void {
    const set = this.#byUuid.get(uuid);
    if (!set) return;
    let view: SagaExecution | undefined;
    for (const waiter of set) {
      if (read && waiter.until === 'stored') continue;
      if (!due(waiter.until, at)) continue;
      set.delete(waiter);
      waiter.resolve((view ??= at.view()));
    }
    if (!set.size) this.#byUuid.delete(uuid);
  }

  /** Rejects every waiter of `uuid` with `err`. */
  fail(uuid: string, err: unknown): void {
    const set = this.#byUuid.get(uuid);
    if (!set) return;
    this.#byUuid.delete(uuid);
    for (const waiter of set) waiter.reject(err);
  }

  /** Rejects every waiter (the manager closes). */
  failAll(err: () => unknown): void {
    for (const uuid of [...this.#byUuid.keys()]) this.fail(uuid, err());
    this.#stopPoller();
  }

  #drop(uuid: string, waiter: Waiter): void {
    const set = this.#byUuid.get(uuid);
    set?.delete(waiter);
    if (set && !set.size) this.#byUuid.delete(uuid);
  }

  #armPoller(): void {
    if (this.#poller || this.#pollMs <= 0) return;
    this.#poller = setInterval(() => void this.#poll(), this.#pollMs);
    this.#poller.unref();
  }

  #stopPoller(): void {
    clearInterval(this.#poller);
    this.#poller = undefined;
  }

  /** One read of the repository for every execution waited on that is not in memory here. */
  async #poll(): Promise<void> {
    if (this.#polling) return;
    if (!this.#byUuid.size) return this.#stopPoller();
    const cutoff = this.#context.now() - this.#pollMs;
    const uuids = [...this.#byUuid.entries()]
      .filter(([uuid, set]) => !this.#context.isLive(uuid) && [...set].some((w) => w.since <= cutoff))
      .map(([uuid]) => uuid);
    if (!uuids.length) return;
    this.#polling = true;
    try {
      const points = await this.#context.read(uuids);
      points.forEach((at, i) => {
        const uuid = uuids[i]!;
        if (at && !this.#context.isLive(uuid)) this.notify(uuid, at, true);
      });
    } catch (err) {
      this.#context.warn('could not read executions waited on', { count: uuids.length, error: err instanceof Error ? err.message : String(err) });
    } finally {
      this.#polling = false;
    }
  }
}
