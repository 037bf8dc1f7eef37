import type { HistoryEntry, SagaMachineEvent } from '../../machines/types.js';
import { systemClock, type Clock } from '../clock.js';
import { SagaContext } from '../context.js';
import type { Saga } from '../definition/saga.js';
import { SagaContextValidationError } from '../errors/saga-context-validation-error.js';
import { SagaError } from '../errors/saga-error.js';
import { SagaFailedCommitError } from '../runtime/saga-failed-commit-error.js';
import { SagaFailedExecutionError } from '../runtime/saga-failed-execution-error.js';
import { SagaRollbackError } from '../runtime/saga-rollback-error.js';
import { SagaInvalidStateError } from '../errors/saga-invalid-state-error.js';
import { SagaManagerClosedError } from '../errors/saga-manager-closed-error.js';
import { SagaUnknownRequestError } from '../errors/saga-unknown-request-error.js';
import { cloneJson, previewJson, type JsonObject } from '../json.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { parseRequestId } from '../messages/request-id.js';
import { SagaResponse, type SagaResponseData } from '../messages/saga-response.js';
import { InMemorySagaRepository } from '../repositories/in-memory-saga-repository.js';
import type { SagaListFilter, SagaListPage, SagaRepository } from '../repositories/saga-repository.js';
import type { InspectObserver } from '../runtime/inspection.js';
import type { RecoverOptions, RecoveryReport } from '../runtime/recovery.js';
import { SagaExecution } from '../runtime/saga-execution.js';
import type { SagaSnapshotLike } from '../../machines/read.js';
import { SagaRuntime, type StoreListener } from '../runtime/saga-runtime.js';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import type { SagaTimer } from '../messages/saga-timer.js';
import { isFinalStatus, SagaStatus, SagaStepStatus } from '../status.js';
import { InProcessBroker } from '../transport/in-process-broker.js';
import type { SagaBroker } from '../transport/saga-broker.js';
import { newUuidV7 } from '../util/uuid-v7.js';
import { SagaRegistry } from './saga-registry.js';

export type { RecoverOptions, RecoveryReport };

/** Options of a {@link SagaManager}. */
export interface SagaManagerOptions {
  /** Where executions are stored. @defaultValue a new `InMemorySagaRepository` */
  repository?: SagaRepository;
  /** How requests reach participants. @defaultValue a new `InProcessBroker` */
  broker?: SagaBroker;
  /** Saga definitions to register (several versions of one saga may be given). */
  sagas?: ReadonlyArray<Saga<object>>;
  /**
   * Inspection observer, e.g. from `@statelyai/inspect`: every execution shows as one actor whose
   * id is its uuid, from `run()` to its end, across pauses on disk. @defaultValue none (nothing is built)
   */
  inspect?: InspectObserver;
  /** @defaultValue the system clock */
  clock?: Clock;
  /** Makes execution ids. @defaultValue uuid v7 (time-ordered) */
  idGenerator?: () => string;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
  /** How often waiters read the repository for executions that run elsewhere. @defaultValue 500 */
  pollIntervalMs?: number;
  /**
   * While running, `recover()` also runs on this interval for executions untouched for at least
   * as long: it re-sends their outbox (a request lost with a crashed peer goes out again) and picks
   * up executions orphaned by another manager. `0` turns it off. @defaultValue 60000
   */
  recoverIntervalMs?: number;
  /**
   * Executions paused on disk that are also kept in memory, least recently stored dropped first,
   * so that a response soon after needs no read from the repository. The repository stays the
   * truth: a store that finds the execution moved on elsewhere reads it again and applies the
   * event there. `0` keeps nothing. @defaultValue 1000
   */
  pausedCacheSize?: number;
  /**
   * Whether this manager owns an execution, when several orchestrators share one repository (see
   * `SagaCluster`): the periodic recovery picks up only the executions it owns. @defaultValue every one
   */
  owns?: (uuid: string) => boolean;
}

/** An operator action by name, as the admin API and the cluster carry them (see {@link SagaManager.act}). */
export type SagaOperatorAction = 'abort' | 'retry-step' | 'retry-compensation' | 'resolve-compensation' | 'resolve-transaction' | 'commit' | 'reject';

/** The operator actions {@link SagaManager.act} takes. */
export const SAGA_OPERATOR_ACTIONS: readonly SagaOperatorAction[] = ['abort', 'retry-step', 'retry-compensation', 'resolve-compensation', 'resolve-transaction', 'commit', 'reject'];

/** What an operator action was given: the step or service it is about, and a note for the history. */
export interface SagaActionInput {
  /** The step (`retry-step`: the paused step by default; `retry-` / `resolve-compensation`: the only failed compensation by default). */
  step?: string;
  /** The service (`resolve-transaction`). */
  service?: string;
  note?: string;
}

/** How an operator action ended: the execution after it, and the failure it then reports, if any. */
export interface SagaActionResult {
  execution: SagaExecution;
  /** The execution ended in a failure the action reports (`SAGA_ROLLBACK_FAILED`, `SAGA_FAILED_COMMIT`), or `null`. */
  outcome: { code: string; message: string } | null;
}

/** One execution with what it waits on (see {@link SagaManager.describe}). */
export interface SagaExecutionDetails {
  execution: SagaExecution;
  /** The requests it waits on (sent, and sent again by recovery until answered). */
  outbox: OutgoingRequest[];
  /** The deadline it waits on, or `null`. */
  timer: SagaTimer | null;
  /** The stored version (`null` before its first store). */
  version: number | null;
  /** When it was last stored (ms since the epoch), when read from the repository. */
  updatedAt: number | null;
  /** Where it is in its chart: the state value, as XState's `snapshot.value`. */
  value: SagaSnapshotLike['value'] | null;
}

/** The one failed, unresolved compensation of an execution: what a compensation action is about when no step is named. */
function soleFailedCompensation(execution: SagaExecution): string {
  const failed = execution.steps.filter((s) => s.compensation?.error && !s.compensation.resolved && !s.compensated).map((s) => s.path);
  const [only, ...others] = failed;
  if (only !== undefined && !others.length) return only;
  if (!failed.length) throw new SagaInvalidStateError(execution.uuid, 'no compensation of it has failed.');
  throw new SagaInvalidStateError(execution.uuid, `name the step: the compensations of ${failed.map((s) => `"${s}"`).join(', ')} failed.`);
}

/** An operator's note, kept in the execution's history. */
const note = (options: { note?: string }): { note?: string } => (typeof options.note === 'string' && options.note ? { note: options.note } : {});

/** What an execution id may be made of: it is the first part of every request id. */
const UUID = /^[A-Za-z0-9._:-]{1,128}$/;

function wholeNumber(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`SagaManager: ${name} must be a whole number >= 0, got ${String(value)}.`);
  return value;
}

/** What {@link SagaManager.stats} reports. */
export interface SagaManagerStats {
  /** Executions in memory, running or waiting. */
  live: number;
  /** Executions paused on disk that are also kept in the cache. */
  pausedCached: number;
  /** Deadlines armed, of executions in memory or paused on disk. */
  armedDeadlines: number;
  /**
   * Responses ignored: `duplicate` (its step ran: an answer already taken, or to an attempt
   * since retried), `late` (the execution had ended), `foreign` (no such execution, a step it never
   * ran, or a request id sagachart does not make; each is also a warning, at most one a second).
   */
  ignoredResponses: Readonly<Record<'duplicate' | 'late' | 'foreign', number>>;
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
  /** Execution id; a new one by default. An id already in use fails with `SagaAlreadyRunningError`. */
  uuid?: string;
  /** Who starts the execution (1-200 characters): stored with it and sent with every request, as minos's `user`. */
  user?: string;
}

/**
 * Runs sagas. A facade over the runtime (`src/runtime/`): executions run on their definitions'
 * transition tables, each stored whenever it waits (snapshot and outbox in one write) before its
 * requests go out; responses and deadlines resume them, restoring those paused on disk; a restart
 * carries every execution on from its last store.
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
  readonly #runtime: SagaRuntime;
  readonly #newId: () => string;
  readonly #log: SagaLogger;
  readonly #recoverTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: SagaManagerOptions = {}) {
    this.repository = options.repository ?? new InMemorySagaRepository();
    this.broker = options.broker ?? new InProcessBroker();
    const clock = options.clock ?? systemClock;
    this.#registry = new SagaRegistry(clock);
    this.#newId = options.idGenerator ?? newUuidV7;
    this.#log = options.logger ?? defaultLogger;
    this.#runtime = new SagaRuntime({
      repository: this.repository,
      broker: this.broker,
      definitions: this.#registry,
      clock,
      log: this.#log,
      controls: this,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      pausedCacheSize: wholeNumber('pausedCacheSize', options.pausedCacheSize ?? 1000),
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    for (const saga of options.sagas ?? []) this.#registry.register(saga);
    this.broker.attach((response) => this.#onResponse(response));
    const every = options.recoverIntervalMs ?? 60_000;
    const owns = options.owns;
    if (every > 0) {
      this.#recoverTimer = setInterval(() => {
        this.recover({ untouchedForMs: every, ...(owns ? { only: owns } : {}) }).catch((err: unknown) => this.#log.error?.('periodic recovery failed', { error: String(err) }));
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
    return this.#runtime.liveCount;
  }

  /** What the manager holds and has ignored, for metrics and tests. */
  stats(): SagaManagerStats {
    return {
      live: this.#runtime.liveCount,
      pausedCached: this.#runtime.cachedCount,
      armedDeadlines: this.#runtime.armedDeadlines,
      ignoredResponses: this.#runtime.ignoredResponses,
    };
  }

  /**
   * One execution with what it waits on: its view, its requests in flight (the outbox) and its
   * deadline, from memory when it runs here, else as stored. Throws `SagaExecutionNotFoundError`.
   */
  async describe(uuid: string): Promise<SagaExecutionDetails> {
    const [execution, waits] = await Promise.all([this.#runtime.get(uuid), this.#runtime.waitsOf(uuid)]);
    return { execution, ...waits };
  }

  /** How many executions the repository holds in each status; `null` when it cannot count. */
  async counts(): Promise<Record<SagaStatus, number> | null> {
    return this.repository.count ? this.repository.count() : null;
  }

  /** The saga definitions this manager knows, each version of each. */
  definitions(): Array<Saga<object>> {
    return this.#registry.all().map((c) => c.saga);
  }

  /**
   * Tells `listener` about every store of an execution by this manager (its uuid, saga, status,
   * version, how long the store took, and its view on demand): for live views and metrics.
   * Returns the function that stops it.
   */
  onStore(listener: StoreListener): () => void {
    return this.#runtime.onStore(listener);
  }

  /** Runs a saga. See {@link RunOptions} for when it resolves. */
  run<T extends object>(saga: Saga<T>, options: RunOptions<T> & { returnExecution: false }): Promise<string>;
  run<T extends object>(saga: Saga<T>, options?: RunOptions<T> & { returnExecution?: true }): Promise<SagaExecution>;
  run<T extends object>(saga: Saga<T>, options?: RunOptions<T>): Promise<SagaExecution | string>;
  async run<T extends object>(saga: Saga<T>, options: RunOptions<T> = {}): Promise<SagaExecution | string> {
    this.#assertOpen();
    const definition = this.#registry.forRun(saga);
    const data = this.#initialData(definition.saga, options.context);
    const uuid = options.uuid ?? this.#newId();
    if (typeof uuid !== 'string' || !UUID.test(uuid)) {
      throw new RangeError(`run(): uuid ${previewJson(uuid, 80)} must be 1 to 128 letters, digits and . _ : - (it goes into every request id, uuid/phase/attempt/step).`);
    }
    const user = options.user;
    if (user !== undefined && (typeof user !== 'string' || user.length < 1 || user.length > 200)) {
      throw new RangeError(`run(): user ${previewJson(user, 80)} must be a string of 1 to 200 characters.`);
    }
    const input = { uuid, data, autocommit: options.autocommit ?? true, ...(user !== undefined ? { user } : {}) };
    const execution = await this.#runtime.run(definition, input, options.pauseOnDisk ?? false);
    // Errored, or (with pauseOnDisk) paused in a rollback that a failure started: either way it failed.
    if ((execution.status === SagaStatus.Errored || execution.error !== null) && (options.raiseOnError ?? true)) {
      throw execution.error?.code === 'SAGA_COMMIT_FAILED' ? new SagaFailedCommitError(execution) : new SagaFailedExecutionError(execution);
    }
    return options.returnExecution === false ? uuid : execution;
  }

  /**
   * Delivers a participant's response to its execution (restoring it if it is paused on disk).
   * A duplicate, late or foreign response is ignored and logged. Resolves with the execution as it
   * is right after the response was applied (or as it is, when it was ignored).
   */
  async resume(response: SagaResponse | SagaResponseData): Promise<SagaExecution> {
    this.#assertOpen();
    const data = response instanceof SagaResponse ? response.toJSON() : SagaResponse.from(response).toJSON();
    const key = parseRequestId(data.requestId);
    if (!key) throw new SagaUnknownRequestError(data.requestId);
    const applied = await this.#runtime.respond(data);
    return applied ? applied.view() : this.get(key.uuid);
  }

  /** The execution as it is now. Throws `SagaExecutionNotFoundError`. */
  get(uuid: string): Promise<SagaExecution> {
    return this.#runtime.get(uuid);
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
    const status = await this.#runtime.statusOf(uuid);
    if (isFinalStatus(status)) return this.get(uuid);
    const timeoutMs = options.timeoutMs;
    return this.#runtime.wait(uuid, 'final', timeoutMs, () => new SagaInvalidStateError(uuid, `still ${status} after waiting ${timeoutMs} ms.`)).promise;
  }

  /**
   * Commits an execution that waits for its commit decision (`autocommit: false`): the two-phase
   * commit of its participants' transactions runs, and it ends `finished`. Throws
   * `SagaFailedCommitError` when a service refused to reserve (the steps were compensated). A
   * second call answers the same.
   */
  commit(uuid: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decision(uuid, { type: 'saga.commit', ...note(options) }, 'cannot commit: the execution is not waiting for a commit decision (run it with autocommit: false).');
  }

  /**
   * Rejects an execution that waits for its commit decision: its steps are compensated, its
   * participants' transactions rejected, and it ends `errored` with `SAGA_REJECTED`. Throws
   * `SagaRollbackError` when a compensation failed. A second call answers the same.
   */
  reject(uuid: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decision(uuid, { type: 'saga.reject', ...note(options) }, 'cannot reject: the execution is not waiting for a commit decision (run it with autocommit: false); abort() stops one that is running.');
  }

  /**
   * Compensates every step of an execution that waits for its commit decision, then rejects its
   * participants' transactions (minos `rollback(autoreject=True)`); as `reject()`, recorded as a rollback.
   */
  rollback(uuid: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decision(uuid, { type: 'saga.rollback', ...note(options) }, 'cannot roll back: the execution is not waiting for a commit decision; abort() stops one that is running.');
  }

  /**
   * Stops an execution that is running or paused (for an operator) and rolls it back: the step
   * it waits on is compensated too (its participant may have acted), then the steps before it,
   * then its participants' transactions are rejected. Works until the commit is decided (during
   * the reserve too). Resolves when the rollback has ended (`errored`, `SAGA_ABORTED`); throws
   * `SagaRollbackError` when a compensation failed. A second call answers the same.
   */
  abort(uuid: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decision(uuid, { type: 'saga.abort', ...note(options) }, 'cannot abort: the execution is not moving forward (it has ended, its commit is under way, or a rollback is).');
  }

  /**
   * Sends the request a step waits on again now, as a new attempt (for an operator, when a
   * participant lost it or is back); the step's retry policy does not count it. Resolves once the
   * new attempt is stored and sent.
   */
  retryStep(uuid: string, step: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decide(uuid, { type: 'saga.retry-step', step, ...note(options) }, 'stored', `step "${step}" is not waiting on a participant (only a step paused on its request or its compensation's can be retried).`);
  }

  /**
   * Runs a failed compensation of an errored execution again (for an operator, once the cause is
   * fixed). Resolves when the execution has settled again.
   */
  retryCompensation(uuid: string, step: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decide(
      uuid,
      { type: 'saga.retry-compensation', step, ...note(options) },
      'final',
      `step "${step}" has no failed compensation to retry; only an errored execution's failed, unresolved compensations can be retried.`,
    );
  }

  /** Marks a failed compensation as dealt with by hand, with an optional note kept in the execution's history. */
  resolveCompensation(uuid: string, step: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decide(uuid, { type: 'saga.resolve-compensation', step, ...note(options) }, 'stored', `step "${step}" has no failed, unresolved compensation to mark resolved.`);
  }

  /**
   * Marks a service's part of a commit or reject under way as dealt with by hand (for an operator,
   * when the service will never acknowledge: it is gone, or was fixed by hand): it is no longer
   * sent or waited on, and recorded as `resolved` in `execution.transaction`. Resolves once stored;
   * the phase ends when no other service is waited on.
   */
  resolveTransaction(uuid: string, service: string, options: { note?: string } = {}): Promise<SagaExecution> {
    return this.#decide(
      uuid,
      { type: 'saga.resolve-transaction', step: `$tx/${service}`, ...note(options) },
      'stored',
      `service "${service}" is not waited on by a commit or reject of this execution (a reserve under way is ended with abort()).`,
    );
  }

  /**
   * Runs an operator action by name (what the admin API, the CLI and other orchestrators of a
   * cluster send): `abort`, `retry-step`, `retry-compensation`, `resolve-compensation`,
   * `resolve-transaction`, `commit`, `reject`. Without a `step`, `retry-step` takes the paused
   * step and the compensation actions the only failed compensation. Resolves with the execution
   * and, when it then ended in a failure it reports (a compensation that failed again, a refused
   * commit), that failure's code: those are outcomes of the action, not refusals. Throws
   * `SagaInvalidStateError` where the action does not fit, `RangeError` for an unknown action.
   */
  async act(uuid: string, action: SagaOperatorAction, input: SagaActionInput = {}): Promise<SagaActionResult> {
    const options = note(input);
    const run = async (): Promise<SagaExecution> => {
      switch (action) {
        case 'abort':
          return this.abort(uuid, options);
        case 'commit':
          return this.commit(uuid, options);
        case 'reject':
          return this.reject(uuid, options);
        case 'retry-step': {
          const step = input.step ?? (await this.get(uuid)).pausedStep;
          if (!step) throw new SagaInvalidStateError(uuid, 'no step is waiting on a participant to retry.');
          return this.retryStep(uuid, step, options);
        }
        case 'retry-compensation':
          return this.retryCompensation(uuid, input.step ?? soleFailedCompensation(await this.get(uuid)), options);
        case 'resolve-compensation':
          return this.resolveCompensation(uuid, input.step ?? soleFailedCompensation(await this.get(uuid)), options);
        case 'resolve-transaction': {
          if (!input.service) throw new SagaInvalidStateError(uuid, 'resolve-transaction needs the service whose part is resolved by hand.');
          return this.resolveTransaction(uuid, input.service, options);
        }
        default:
          throw new RangeError(`no operator action "${String(action)}"; the actions are ${SAGA_OPERATOR_ACTIONS.join(', ')}`);
      }
    };
    try {
      return { execution: await run(), outcome: null };
    } catch (err) {
      if (err instanceof SagaFailedExecutionError) return { execution: err.execution, outcome: { code: err.code, message: err.message } };
      throw err;
    }
  }

  /**
   * Picks up every stored execution that is not done: sends its outbox again (participants
   * deduplicate on `requestId`), re-arms its deadline, and restores executions that were running
   * handlers when stored (their handlers run again). Call it at start-up; it also runs on
   * `recoverIntervalMs` for executions untouched that long.
   */
  recover(options: RecoverOptions = {}): Promise<RecoveryReport> {
    this.#assertOpen();
    return this.#runtime.recover(options);
  }

  /** Stops taking work, lets queued stores finish, and drops every execution from memory. Executions stay stored. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#recoverTimer);
    this.broker.attach(() => undefined);
    await this.#runtime.close(() => new SagaManagerClosedError());
  }

  // ---------------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new SagaManagerClosedError();
  }

  async #decide(uuid: string, event: SagaMachineEvent, until: 'final' | 'stored', refusal: string, repeat?: HistoryEntry['action']): Promise<SagaExecution> {
    this.#assertOpen();
    // Waiting starts before the event goes in, so the store it leads to cannot be missed.
    const waiting = this.#runtime.wait(uuid, until);
    try {
      if (await this.#runtime.decide(uuid, event)) return await waiting.promise;
      // Not taken: the execution does not exist (SagaExecutionNotFoundError), or the event does not fit its state.
      const current = await this.#runtime.get(uuid);
      // The same decision taken before: answer what it led to.
      if (repeat && current.history.some((h) => h.action === repeat)) return await this.waitFor(uuid);
      throw new SagaInvalidStateError(uuid, refusal);
    } finally {
      waiting.cancel();
    }
  }

  /** A commit decision or an abort, carried through to the end, and what it ended with. */
  async #decision(uuid: string, event: Extract<SagaMachineEvent, { type: 'saga.commit' | 'saga.reject' | 'saga.rollback' | 'saga.abort' }>, refusal: string): Promise<SagaExecution> {
    const action = event.type.slice('saga.'.length) as 'commit' | 'reject' | 'rollback' | 'abort';
    const execution = await this.#decide(uuid, event, 'final', refusal, action);
    if (action === 'commit') {
      if (execution.error?.code === 'SAGA_COMMIT_FAILED') throw new SagaFailedCommitError(execution);
      return execution;
    }
    const failed = execution.steps.filter((s) => s.status === SagaStepStatus.ErroredOnFailure && s.compensation?.resolved !== true).map((s) => s.path);
    if (failed.length) throw new SagaRollbackError(execution, failed);
    return execution;
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

  #onResponse(data: SagaResponseData): void {
    if (this.#closed) return;
    this.#runtime.respond(data).catch(this.#undelivered);
  }

  readonly #undelivered = (err: unknown): void => {
    this.#log.warn?.('could not deliver a response', { error: err instanceof Error ? err.message : String(err), ...(err instanceof SagaError ? { code: err.code } : {}) });
  };
}
