import { v7 as uuidv7 } from 'uuid';
import { createActor, type InspectionEvent, type Observer, type Snapshot } from 'xstate';
import { redeliverFinishedChildren, type CompiledSaga, type SagaActor, type SagaSnapshot } from '../../machines/compile.js';
import { isAwaitingCommit, pendingWork, sagaStatusOf } from '../../machines/read.js';
import type { SagaTimer } from '../messages/saga-timer.js';
import { waitKey } from '../../machines/effects.js';
import type { SagaMachineEvent } from '../../machines/types.js';
import { systemClock, type Clock } from '../clock.js';
import { SagaContext } from '../context.js';
import type { Saga } from '../definition/saga.js';
import { SagaContextValidationError } from '../errors/saga-context-validation-error.js';
import { SagaError } from '../errors/saga-error.js';
import { SagaExecutionNotFoundError } from '../errors/saga-execution-not-found-error.js';
import { SagaFailedExecutionError } from '../errors/saga-failed-execution-error.js';
import { SagaInvalidStateError } from '../errors/saga-invalid-state-error.js';
import { SagaManagerClosedError } from '../errors/saga-manager-closed-error.js';
import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import { SagaUnknownRequestError } from '../errors/saga-unknown-request-error.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { cloneJson, type JsonObject } from '../json.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { parseRequestId } from '../messages/request-id.js';
import { SagaResponse, type SagaResponseData } from '../messages/saga-response.js';
import { InMemorySagaRepository } from '../repositories/in-memory-saga-repository.js';
import { RECORD_FORMAT, type SagaListFilter, type SagaListPage, type SagaRecord, type SagaRepository } from '../repositories/saga-repository.js';
import { isFinalStatus, SagaStatus } from '../status.js';
import { InProcessBroker } from '../transport/in-process-broker.js';
import type { SagaBroker } from '../transport/saga-broker.js';
import { DeadlineScheduler } from './deadline-scheduler.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { SagaExecution } from './saga-execution.js';
import { SagaRegistry } from './saga-registry.js';

/** Options of a {@link SagaManager}. */
export interface SagaManagerOptions {
  /** Where executions are stored. @defaultValue a new `InMemorySagaRepository` */
  repository?: SagaRepository;
  /** How requests reach participants. @defaultValue a new `InProcessBroker` */
  broker?: SagaBroker;
  /** Saga definitions to register (several versions of one saga may be given). */
  sagas?: ReadonlyArray<Saga<object>>;
  /** Inspection observer handed to every saga actor, e.g. from `@statelyai/inspect`. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** @defaultValue the system clock */
  clock?: Clock;
  /** Makes execution ids. @defaultValue uuid v7 (time-ordered) */
  idGenerator?: () => string;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
  /** How often `waitFor()` polls the repository for executions that run elsewhere. @defaultValue 500 */
  pollIntervalMs?: number;
  /**
   * While running, `recover()` also runs on this interval for executions untouched for at least
   * as long: it re-sends their outbox (a request lost with a crashed peer goes out again) and picks
   * up executions orphaned by another manager. `0` turns it off. @defaultValue 60000
   */
  recoverIntervalMs?: number;
}

/** Options of {@link SagaManager.run}. */
export interface RunOptions<T extends object> {
  /** Initial context, validated against the saga's schema if it has one. */
  context?: T | SagaContext<T>;
  /**
   * `false`: resolve when the execution ends. `true`: resolve as soon as it is paused and stored
   * (it then costs no memory; responses resume it). @defaultValue false
   */
  pauseOnDisk?: boolean;
  /** Reject with `SagaFailedExecutionError` when the execution ends errored. @defaultValue true */
  raiseOnError?: boolean;
  /** Resolve with the `SagaExecution`; `false` resolves with its uuid. @defaultValue true */
  returnExecution?: boolean;
  /** Finish without waiting for `execution.commit()`. @defaultValue true */
  autocommit?: boolean;
  /** Execution id; a new one by default. Running twice with one id fails with `SAGA_VERSION_CONFLICT`. */
  uuid?: string;
}

/** What `recover()` did. */
export interface RecoveryReport {
  /** Executions picked up. */
  recovered: number;
  /** Requests sent again from outboxes. */
  resent: number;
  /** Executions whose actor was restored to carry on (created or running when stored). */
  restarted: number;
  failed: Array<{ uuid: string; code: string; message: string }>;
}

/** A live execution: an actor in memory, and what this process knows of its stored state. */
interface Host {
  uuid: string;
  compiled: CompiledSaga;
  actor: SagaActor;
  /** Stored version; `null` before the first store. */
  version: number | null;
  /** The durable facts of the last snapshot queued for storing. */
  lastKey: string;
  /** Request ids this process has sent for the execution. */
  sent: Set<string>;
  pauseOnDisk: boolean;
  released: boolean;
}

/** `run`: ended, waiting for a commit decision, or paused on disk (with pauseOnDisk). */
type Until = 'final' | 'run' | 'stored';
interface Waiter {
  until: Until;
  /** For `run`: the run paused on disk, so a paused execution is due. */
  pauseOnDisk?: boolean;
  resolve: (execution: SagaExecution) => void;
  reject: (err: unknown) => void;
}

/** Executions recovered at once by `recover()`. */
const RECOVERY_CONCURRENCY = 32;
const ACTIVE_STATUSES = [SagaStatus.Created, SagaStatus.Running, SagaStatus.Paused] as const;

/**
 * Runs sagas: creates an actor per execution, stores its snapshot whenever it waits (with the
 * requests to send, in one write), sends those requests through the broker, arms deadlines,
 * delivers responses (restoring executions paused on disk), and recovers after a restart.
 *
 * @example
 * ```ts
 * const manager = new SagaManager({ broker, sagas: [CREATE_ORDER] });
 * const execution = await manager.run(CREATE_ORDER, { context: { items: ['book'] } });
 * console.log(execution.status); // 'finished'
 * ```
 */
export class SagaManager {
  /** The repository executions are stored in. */
  readonly repository: SagaRepository;
  /** The broker requests go through. */
  readonly broker: SagaBroker;
  readonly #registry: SagaRegistry;
  readonly #clock: Clock;
  readonly #newId: () => string;
  readonly #log: SagaLogger;
  readonly #inspect: SagaManagerOptions['inspect'];
  readonly #pollMs: number;
  readonly #queue = new KeyedQueue();
  readonly #live = new Map<string, Host>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #deadlines: DeadlineScheduler<SagaTimer['event']>;
  readonly #recoverTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: SagaManagerOptions = {}) {
    this.repository = options.repository ?? new InMemorySagaRepository();
    this.broker = options.broker ?? new InProcessBroker();
    this.#clock = options.clock ?? systemClock;
    this.#registry = new SagaRegistry(this.#clock);
    this.#newId = options.idGenerator ?? (() => uuidv7());
    this.#log = options.logger ?? defaultLogger;
    this.#inspect = options.inspect;
    this.#pollMs = options.pollIntervalMs ?? 500;
    this.#deadlines = new DeadlineScheduler(this.#clock, (uuid, event) => this.#onDeadline(uuid, event));
    for (const saga of options.sagas ?? []) this.#registry.register(saga);
    this.broker.attach((response) => this.#onResponse(response));
    const every = options.recoverIntervalMs ?? 60_000;
    if (every > 0) {
      this.#recoverTimer = setInterval(() => {
        this.recover({ untouchedForMs: every }).catch((err: unknown) => this.#log.error?.('periodic recovery failed', { error: String(err) }));
      }, every);
      this.#recoverTimer.unref();
    }
  }

  /** Registers a saga definition (another version of a registered saga is kept beside it). */
  register<T extends object>(saga: Saga<T>): this {
    this.#registry.register(saga);
    return this;
  }

  /** Number of executions held in memory (the others are paused on disk or done). */
  get liveCount(): number {
    return this.#live.size;
  }

  /** Runs a saga. See {@link RunOptions} for when it resolves. */
  run<T extends object>(saga: Saga<T>, options: RunOptions<T> & { returnExecution: false }): Promise<string>;
  run<T extends object>(saga: Saga<T>, options?: RunOptions<T> & { returnExecution?: true }): Promise<SagaExecution>;
  run<T extends object>(saga: Saga<T>, options?: RunOptions<T>): Promise<SagaExecution | string>;
  async run<T extends object>(saga: Saga<T>, options: RunOptions<T> = {}): Promise<SagaExecution | string> {
    this.#open();
    const compiled = this.#registry.forRun(saga);
    const data = this.#initialData(compiled.saga, options.context);
    const uuid = options.uuid ?? this.#newId();
    const pauseOnDisk = options.pauseOnDisk ?? false;
    const actor = this.#createActor(compiled, {
      input: { uuid, data, autocommit: options.autocommit ?? true },
    });
    const host: Host = { uuid, compiled, actor, version: null, lastKey: '', sent: new Set(), pauseOnDisk, released: false };
    if (this.#live.has(uuid)) throw new SagaVersionConflictError(uuid, 0, 1);
    const settled = this.#wait(uuid, 'run', pauseOnDisk);
    this.#live.set(uuid, host);
    await this.#queue.run(uuid, () => this.#start(host));
    void this.#queue.run(uuid, () => {
      if (!host.released) host.actor.send({ type: 'saga.start' });
    });
    const execution = await settled;
    if (execution.status === SagaStatus.Errored && (options.raiseOnError ?? true)) throw new SagaFailedExecutionError(execution);
    return options.returnExecution === false ? uuid : execution;
  }

  /**
   * Delivers a participant's response to its execution (restoring it if it is paused on disk).
   * A duplicate, late or foreign response is ignored and logged. Resolves with the execution as it
   * is right after the response was applied.
   */
  async resume(response: SagaResponse | SagaResponseData): Promise<SagaExecution> {
    this.#open();
    const data = response instanceof SagaResponse ? response.toJSON() : SagaResponse.from(response).toJSON();
    const key = parseRequestId(data.requestId);
    if (!key) throw new SagaUnknownRequestError(data.requestId);
    const host = await this.#deliver(key.uuid, { type: 'saga.response', step: key.step, phase: key.phase, attempt: key.attempt, response: data }, (snap) =>
      pendingWork(snap).requests.some((r) => r.requestId === data.requestId),
    );
    return host ? this.#view(host.compiled, host.actor.getSnapshot()) : this.get(key.uuid);
  }

  /** The execution as it is now. Throws `SagaExecutionNotFoundError`. */
  async get(uuid: string): Promise<SagaExecution> {
    const host = this.#live.get(uuid);
    if (host && !host.released) return this.#view(host.compiled, host.actor.getSnapshot());
    const record = await this.repository.load(uuid);
    if (!record) throw new SagaExecutionNotFoundError(uuid);
    const { compiled, snapshot } = this.#read(record);
    return this.#view(compiled, snapshot);
  }

  /** Stored executions, newest first, by status, saga name and creation time. */
  list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    return this.repository.list(filter);
  }

  /**
   * Resolves when the execution is `finished` or `errored` (it does not throw for `errored`), or
   * rejects after `timeoutMs`. Works for executions run by another manager on the same repository.
   */
  async waitFor(uuid: string, options: { timeoutMs?: number } = {}): Promise<SagaExecution> {
    // The stored status says whether to wait: no need to restore the snapshot to learn it.
    const host = this.#live.get(uuid);
    const record = host && !host.released ? null : await this.repository.load(uuid);
    if (!host && !record) throw new SagaExecutionNotFoundError(uuid);
    const status = record ? record.status : sagaStatusOf(host!.actor.getSnapshot());
    if (isFinalStatus(status)) return this.get(uuid);
    const current = { status };
    return new Promise<SagaExecution>((resolve, reject) => {
      const waiter: Waiter = { until: 'final', resolve: (e) => finish(() => resolve(e)), reject: (err) => finish(() => reject(err)) };
      let poll: ReturnType<typeof setInterval> | undefined;
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const finish = (fn: () => void) => {
        clearInterval(poll);
        clearTimeout(timeout);
        this.#waiters.get(uuid)?.delete(waiter);
        fn();
      };
      this.#addWaiter(uuid, waiter);
      poll = setInterval(() => {
        if (this.#live.has(uuid)) return;
        this.get(uuid).then((e) => isFinalStatus(e.status) && waiter.resolve(e), waiter.reject);
      }, this.#pollMs);
      poll.unref?.();
      if (options.timeoutMs !== undefined) {
        timeout = setTimeout(
          () => waiter.reject(new SagaInvalidStateError(uuid, `still ${current.status} after waiting ${options.timeoutMs} ms.`)),
          options.timeoutMs,
        );
      }
    });
  }

  /** Finishes an execution that waits for its commit decision (`autocommit: false`). */
  commit(uuid: string): Promise<SagaExecution> {
    return this.#decide(uuid, { type: 'saga.commit' }, 'commit');
  }

  /** Rejects an execution that waits for its commit decision: its steps are compensated. */
  reject(uuid: string): Promise<SagaExecution> {
    return this.#decide(uuid, { type: 'saga.reject' }, 'reject');
  }

  /** Compensates every step of an execution that waits for its commit decision. */
  rollback(uuid: string): Promise<SagaExecution> {
    return this.#decide(uuid, { type: 'saga.reject' }, 'roll back');
  }

  /**
   * Runs a failed compensation of an errored execution again (for an operator, once the cause is
   * fixed). Resolves when the execution has settled again.
   */
  async retryCompensation(uuid: string, step: string): Promise<SagaExecution> {
    this.#open();
    const done = this.#wait(uuid, 'final');
    const host = await this.#deliver(uuid, { type: 'saga.retry-compensation', step }, (snap) => failedCompensation(snap, step));
    if (!host) {
      this.#dropWaiters(uuid, done);
      throw new SagaInvalidStateError(uuid, `step "${step}" has no failed compensation to retry; only an errored execution's failed, unresolved compensations can be retried.`);
    }
    return done;
  }

  /** Marks a failed compensation as dealt with by hand. */
  async resolveCompensation(uuid: string, step: string): Promise<SagaExecution> {
    this.#open();
    const stored = this.#wait(uuid, 'stored');
    const host = await this.#deliver(uuid, { type: 'saga.resolve-compensation', step }, (snap) => failedCompensation(snap, step), true);
    if (!host) {
      this.#dropWaiters(uuid, stored);
      throw new SagaInvalidStateError(uuid, `step "${step}" has no failed, unresolved compensation to mark resolved.`);
    }
    return stored;
  }

  /**
   * Picks up every stored execution that is not done: sends its outbox again (participants
   * deduplicate on `requestId`), re-arms its deadline, and restores the actor of executions that
   * were running handlers when stored (their handlers run again). Call it at start-up; it also
   * runs on `recoverIntervalMs` for executions untouched that long.
   */
  async recover(options: { untouchedForMs?: number } = {}): Promise<RecoveryReport> {
    this.#open();
    const report: RecoveryReport = { recovered: 0, resent: 0, restarted: 0, failed: [] };
    const before = options.untouchedForMs === undefined ? Infinity : this.#clock.now() - options.untouchedForMs;
    let cursor: string | null = null;
    do {
      const page: SagaListPage = await this.repository.list({ status: ACTIVE_STATUSES, cursor, limit: 500 });
      cursor = page.cursor;
      const todo = page.items.filter((item) => !this.#live.has(item.uuid) && item.updatedAt <= before);
      // Executions are independent: recover a bounded number at a time (each in its own queue).
      let next = 0;
      const worker = async () => {
        while (next < todo.length) {
          const item = todo[next++]!;
          try {
            await this.#queue.run(item.uuid, () => this.#recoverOne(item.uuid, report));
          } catch (err) {
            const info = err instanceof SagaError ? err.toJSON() : { code: 'SAGA_RECOVERY_FAILED', message: String(err) };
            report.failed.push({ uuid: item.uuid, ...info });
            this.#log.error?.('could not recover execution', { uuid: item.uuid, ...info });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(RECOVERY_CONCURRENCY, todo.length) }, worker));
    } while (cursor);
    return report;
  }

  /** Stops taking work, lets queued stores finish, and releases every actor. Executions stay stored. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#recoverTimer);
    await this.#queue.drain();
    this.#deadlines.clear();
    for (const host of this.#live.values()) this.#release(host);
    this.broker.attach(() => undefined);
    for (const [uuid, waiters] of this.#waiters) {
      for (const w of waiters) w.reject(new SagaManagerClosedError());
      this.#waiters.delete(uuid);
    }
  }

  // ---------------------------------------------------------------------------------------------

  #open(): void {
    if (this.#closed) throw new SagaManagerClosedError();
  }

  #initialData(saga: Saga<object>, context: object | undefined): JsonObject {
    let data: unknown = context instanceof SagaContext ? context.toJSON() : (context ?? {});
    if (saga.schema) {
      const parsed = saga.schema.safeParse(data);
      if (!parsed.success) {
        throw new SagaContextValidationError(
          saga.name,
          parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
        );
      }
      data = parsed.data;
    }
    try {
      const json = cloneJson(data) as unknown;
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError('the context must be an object');
      return json as JsonObject;
    } catch (err) {
      throw new SagaContextValidationError(saga.name, [{ path: '', message: `not JSON-serialisable: ${(err as Error).message}` }]);
    }
  }

  #createActor(compiled: CompiledSaga, options: { input?: { uuid: string; data: JsonObject; autocommit: boolean }; snapshot?: Snapshot<unknown> }): SagaActor {
    return createActor(compiled.machine, {
      ...options,
      ...(this.#inspect ? { inspect: this.#inspect } : {}),
    }) as SagaActor;
  }

  /** Subscribes to a host's actor and starts it. Runs inside the execution's queue. */
  #start(host: Host): void {
    host.actor.subscribe({
      next: (snapshot) => this.#onSnapshot(host, snapshot),
      error: (err) => this.#onActorError(host, err),
    });
    host.actor.start();
  }

  /**
   * Called on every snapshot: when its durable facts changed (status, requests to send,
   * deadline), queues a store of the persisted snapshot taken now. Running snapshots are not
   * stored: a crash while running goes back to the last stored wait and runs the handlers again.
   */
  #onSnapshot(host: Host, snapshot: SagaSnapshot): void {
    if (host.released || snapshot.status === 'stopped') return;
    const status = sagaStatusOf(snapshot);
    const work = status === SagaStatus.Running ? null : pendingWork(snapshot);
    const awaitingCommit = isAwaitingCommit(snapshot);
    // Paused with nothing to send, no deadline and no decision awaited: a child just finished and
    // the parent moves on in the next snapshot. Like running, nothing durable to store.
    if (!work || (status === SagaStatus.Paused && !awaitingCommit && !work.requests.length && !work.timers.length)) {
      host.lastKey = SagaStatus.Running;
      return;
    }
    const timer = work.timers.reduce<SagaTimer | null>((a, t) => (a === null || t.at < a.at ? t : a), null);
    const key = keyOf(status, awaitingCommit, work.requests, timer);
    if (key === host.lastKey) return;
    host.lastKey = key;
    const persisted = host.actor.getPersistedSnapshot();
    const createdAt = snapshot.context.createdAt;
    void this.#queue
      .run(host.uuid, () => this.#store(host, { status, persisted, requests: work.requests, timer, key, awaitingCommit, createdAt }))
      .catch((err: unknown) => this.#log.error?.('store failed', { uuid: host.uuid, error: String(err) }));
  }

  /** Stores one snapshot, then does what the store makes safe: send, arm, notify, release. */
  async #store(
    host: Host,
    s: { status: SagaStatus; persisted: unknown; requests: SagaRecord['outbox']; timer: SagaTimer | null; key: string; awaitingCommit: boolean; createdAt: number },
  ): Promise<void> {
    if (host.released) return;
    const record: SagaRecord = {
      format: RECORD_FORMAT,
      uuid: host.uuid,
      sagaName: host.compiled.saga.name,
      definitionHash: host.compiled.saga.hash,
      version: (host.version ?? 0) + 1,
      status: s.status,
      createdAt: s.createdAt,
      updatedAt: this.#clock.now(),
      snapshot: s.persisted,
      outbox: s.requests,
      timer: s.timer,
    };
    try {
      await this.repository.store(record, host.version);
    } catch (err) {
      const fields = { uuid: host.uuid, version: record.version, error: err instanceof Error ? err.message : String(err) };
      // A lost compare-and-set means another manager applied this transition first: it owns the
      // execution now, and this copy is dropped. Anything else is a storage failure.
      this.#release(host);
      if (err instanceof SagaVersionConflictError && host.version !== null) {
        // Whoever owns it now moves it on: its waiters here follow it through the repository.
        this.#log.info?.('another manager stored this execution first; released here', fields);
        this.#followInRepository(host.uuid);
      } else {
        this.#log.error?.('could not store execution; it is released from memory and continues from its last stored state on recovery', fields);
        this.#notify(host.uuid, null, err);
      }
      return;
    }
    host.version = record.version;
    for (const request of s.requests) {
      if (host.sent.has(request.requestId)) continue;
      host.sent.add(request.requestId);
      this.broker.send(request);
    }
    if (host.sent.size > s.requests.length) host.sent = new Set(s.requests.map((r) => r.requestId));
    this.#deadlines.arm(host.uuid, s.timer?.at ?? null, s.timer?.event);
    if (isFinalStatus(s.status) || (host.pauseOnDisk && s.status === SagaStatus.Paused && host.lastKey === s.key)) this.#release(host);
    this.#notify(host.uuid, { status: s.status, awaitingCommit: s.awaitingCommit, view: () => this.#view(host.compiled, host.actor.getSnapshot()) }, null);
  }

  /** Resolves the waiters of an execution that a store made due (or rejects them all on `err`). */
  #notify(uuid: string, what: { status: SagaStatus; awaitingCommit: boolean; view: () => SagaExecution } | null, err: unknown): void {
    const waiters = this.#waiters.get(uuid);
    if (!waiters?.size) return;
    let view: SagaExecution | undefined;
    for (const w of [...waiters]) {
      if (what) {
        const final = isFinalStatus(what.status);
        const due =
          w.until === 'stored' ||
          final ||
          (w.until === 'run' && (what.awaitingCommit || (w.pauseOnDisk === true && what.status === SagaStatus.Paused)));
        if (!due) continue;
        view ??= what.view();
        waiters.delete(w);
        w.resolve(view);
      } else {
        waiters.delete(w);
        w.reject(err);
      }
    }
    if (!waiters.size) this.#waiters.delete(uuid);
  }

  #wait(uuid: string, until: Until, pauseOnDisk = false): Promise<SagaExecution> {
    return new Promise((resolve, reject) => this.#addWaiter(uuid, { until, pauseOnDisk, resolve, reject }));
  }

  /** Polls the repository for an execution another manager moves on, until its waiters are due. */
  #followInRepository(uuid: string): void {
    const timer = setInterval(() => {
      if (!this.#waiters.get(uuid)?.size || this.#closed) return clearInterval(timer);
      if (this.#live.has(uuid)) return; // back in this process: its stores notify
      this.get(uuid).then(
        (view) => this.#notify(uuid, { status: view.status, awaitingCommit: view.awaitingCommit, view: () => view }, null),
        (err: unknown) => this.#log.warn?.('could not read an execution owned by another manager', { uuid, error: String(err) }),
      );
    }, this.#pollMs);
    timer.unref();
  }

  #addWaiter(uuid: string, waiter: Waiter): void {
    let set = this.#waiters.get(uuid);
    if (!set) this.#waiters.set(uuid, (set = new Set()));
    set.add(waiter);
  }

  #dropWaiters(uuid: string, promise: Promise<unknown>): void {
    promise.catch(() => undefined);
    this.#waiters.delete(uuid);
  }

  #release(host: Host): void {
    if (host.released) return;
    host.released = true;
    if (this.#live.get(host.uuid) === host) this.#live.delete(host.uuid);
    host.actor.stop();
  }

  #onActorError(host: Host, err: unknown): void {
    this.#log.error?.('saga actor failed; the execution stays at its last stored state', { uuid: host.uuid, error: String(err) });
    this.#release(host);
    this.#notify(host.uuid, null, new SagaSnapshotError(host.uuid, `the actor failed: ${String(err)}`, { cause: err }));
  }

  /** Restores a stored execution into a live actor. Runs inside the execution's queue. */
  async #restore(uuid: string): Promise<Host> {
    const record = await this.repository.load(uuid);
    if (!record) throw new SagaExecutionNotFoundError(uuid);
    const { compiled, snapshot, actor } = this.#read(record);
    const host: Host = {
      uuid,
      compiled,
      actor,
      version: record.version,
      lastKey: '',
      sent: new Set(record.outbox.map((r) => r.requestId)),
      pauseOnDisk: true,
      released: false,
    };
    const timer = record.timer;
    host.lastKey = keyOf(sagaStatusOf(snapshot), isAwaitingCommit(snapshot), record.outbox, timer);
    this.#live.set(uuid, host);
    this.#start(host);
    redeliverFinishedChildren(actor);
    return host;
  }

  /** Reads a stored record: the compiled definition it started on and its snapshot, not started. */
  #read(record: SagaRecord): { compiled: CompiledSaga; snapshot: SagaSnapshot; actor: SagaActor } {
    const compiled = this.#registry.forRecord(record.sagaName, record.definitionHash);
    let snapshot: SagaSnapshot;
    let actor: SagaActor;
    try {
      // Restored, not started: nothing runs until the caller starts it.
      actor = this.#createActor(compiled, { snapshot: record.snapshot as Snapshot<unknown> });
      snapshot = actor.getSnapshot();
    } catch (err) {
      throw new SagaSnapshotError(record.uuid, `XState could not restore it (${(err as Error).message})`, { cause: err });
    }
    if (snapshot.status === 'error' || !snapshot.context || typeof snapshot.context.uuid !== 'string') {
      throw new SagaSnapshotError(record.uuid, 'it restores to an actor in error: its states do not match the definition');
    }
    return { compiled, snapshot, actor };
  }

  /**
   * Sends an event to an execution, restoring it from the repository when it is not in memory.
   * `accept` checks the event still applies (a response to a pending request, a current deadline);
   * if not, it is ignored and logged. Resolves with the host, or `null` when ignored.
   */
  #deliver(uuid: string, event: SagaMachineEvent, accept: (snapshot: SagaSnapshot) => boolean, forceStore = false): Promise<Host | null> {
    return this.#queue.run(uuid, async () => {
      let host = this.#live.get(uuid);
      if (!host || host.released) host = await this.#restore(uuid);
      const snapshot = host.actor.getSnapshot();
      if (snapshot.status !== 'active' || !accept(snapshot)) {
        this.#log.info?.('ignored an event that no longer applies (duplicate, late or foreign)', { uuid, event: event.type, ...('step' in event ? { step: event.step } : {}) });
        if (host.pauseOnDisk && sagaStatusOf(snapshot) !== SagaStatus.Running) this.#release(host);
        return null;
      }
      if (forceStore) host.lastKey = '';
      // A reply goes straight to the remote-step child that waits for it: the root would only
      // forward it, at the cost of a whole macrostep and snapshot.
      const child = event.type === 'saga.response' || event.type === 'saga.deadline' ? snapshot.children[waitKey(event.step, event.phase)] : undefined;
      if (child && child.getSnapshot().status === 'active') {
        child.send(event);
        // A child that only moved on (a retry, a backoff) makes the root emit nothing: look at
        // the root now, so the new request and deadline are stored and sent.
        this.#onSnapshot(host, host.actor.getSnapshot());
      } else host.actor.send(event);
      return host;
    });
  }

  async #decide(uuid: string, event: SagaMachineEvent, verb: string): Promise<SagaExecution> {
    this.#open();
    const done = this.#wait(uuid, 'final');
    const host = await this.#deliver(uuid, event, isAwaitingCommit);
    if (!host) {
      this.#dropWaiters(uuid, done);
      throw new SagaInvalidStateError(uuid, `cannot ${verb}: the execution is not waiting for a commit decision (run it with autocommit: false).`);
    }
    return done;
  }

  #onResponse(data: SagaResponseData): void {
    if (this.#closed) return;
    const key = parseRequestId(data.requestId);
    if (!key) {
      this.#log.warn?.('ignored a response with an unknown request id', { requestId: data.requestId });
      return;
    }
    const event: SagaMachineEvent = { type: 'saga.response', step: key.step, phase: key.phase, attempt: key.attempt, response: data };
    this.#deliver(key.uuid, event, (snap) => pendingWork(snap).requests.some((r) => r.requestId === data.requestId)).catch((err: unknown) =>
      this.#log.warn?.('could not deliver a response', { requestId: data.requestId, error: err instanceof Error ? err.message : String(err) }),
    );
  }

  #onDeadline(uuid: string, event: SagaTimer['event']): void {
    if (this.#closed) return;
    this.#deliver(uuid, event, (snap) =>
      pendingWork(snap).timers.some((t) => t.event.step === event.step && t.event.phase === event.phase && t.event.attempt === event.attempt),
    ).catch((err: unknown) => this.#log.warn?.('could not deliver a deadline', { uuid, error: err instanceof Error ? err.message : String(err) }));
  }

  async #recoverOne(uuid: string, report: RecoveryReport): Promise<void> {
    if (this.#live.has(uuid)) return;
    const record = await this.repository.load(uuid);
    if (!record || isFinalStatus(record.status)) return;
    report.recovered++;
    if (record.status === SagaStatus.Paused) {
      this.#read(record); // refuses a snapshot that cannot be restored, now rather than at the response
      for (const request of record.outbox) {
        this.broker.send(request);
        report.resent++;
      }
      this.#deadlines.arm(uuid, record.timer?.at ?? null, record.timer?.event);
      return;
    }
    const host = await this.#restore(uuid);
    report.restarted++;
    if (sagaStatusOf(host.actor.getSnapshot()) === SagaStatus.Created) host.actor.send({ type: 'saga.start' });
  }

  #view(compiled: CompiledSaga, snapshot: SagaSnapshot): SagaExecution {
    return new SagaExecution(compiled, snapshot, this);
  }
}

/** The durable facts of a snapshot: when they change, the snapshot must be stored. */
function keyOf(status: SagaStatus, awaitingCommit: boolean, requests: ReadonlyArray<{ requestId: string }>, timer: SagaTimer | null): string {
  return `${status}${awaitingCommit ? '+commit' : ''}|${requests.map((r) => r.requestId).join(',')}|${timer?.at ?? ''}`;
}

function failedCompensation(snapshot: SagaSnapshot, step: string): boolean {
  const rec = snapshot.context.steps[step];
  return sagaStatusOf(snapshot) === SagaStatus.Errored && rec?.compensated === false && rec.compensation?.error !== undefined && !rec.compensation.resolved;
}
