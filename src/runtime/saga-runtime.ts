import { performance } from 'node:perf_hooks';
import type { CompiledSaga } from '../../machines/compile.js';
import type { SagaSnapshotLike } from '../../machines/read.js';
import { responseEvent, type SagaMachineEvent, type SagaMachineInput } from '../../machines/types.js';
import type { Clock } from '../clock.js';
import { SagaAlreadyRunningError } from '../errors/saga-already-running-error.js';
import { SagaChartError } from '../errors/saga-chart-error.js';
import { SagaExecutionNotFoundError } from '../errors/saga-execution-not-found-error.js';
import { SagaSnapshotError } from '../errors/saga-snapshot-error.js';
import type { SagaLogger } from '../logger.js';
import { parseRequestId } from '../messages/request-id.js';
import { failedResponse, responseProblem, type SagaResponseData } from '../messages/saga-response.js';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import type { SagaTimer } from '../messages/saga-timer.js';
import type { SagaRecord, SagaRepository } from '../repositories/saga-repository.js';
import { isFinalStatus, SagaStatus } from '../status.js';
import type { SagaBroker } from '../transport/saga-broker.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { DeadlineScheduler } from './deadline-scheduler.js';
import { DEADLINE, eventOf, refusalOf, whatOf, type Delivery } from './delivery.js';
import { IgnoredResponses, type IgnoredKind, type Seen } from './ignored-responses.js';
import { ExecutionInspector, type InspectObserver } from './inspection.js';
import { LiveExecution } from './live-execution.js';
import { LiveExecutions } from './live-executions.js';
import { Recovery, type RecoverOptions, type RecoveryReport } from './recovery.js';
import { SagaExecution, type SagaExecutionControls } from './saga-execution.js';
import { SnapshotWriter, type StoreOutcome } from './snapshot-writer.js';
import { restPointOf } from './stored-views.js';
import { Waiters, type RestPoint, type Waiting, type WaitUntil } from './waiters.js';

/** The definitions the runtime restores stored executions onto. */
export interface DefinitionSource {
  /** The compiled definition a stored execution started on; throws when it is not registered. */
  forRecord(sagaName: string, definitionHash: string): CompiledSaga;
}

/** What happened to an execution at one of its stores: for live views and metrics. */
export interface StoreEvent {
  uuid: string;
  sagaName: string;
  /** `stored`: the store succeeded; `conflict`: another writer got there first; `failed`: the repository failed. */
  outcome: StoreOutcome['kind'];
  /** The status stored (for `stored`), or the status the execution had. */
  status: SagaStatus;
  version: number | null;
  /** How long the store took (ms). */
  storeMs: number;
  /** The execution as stored, built when asked for. */
  view(): SagaExecution;
}

/** What an execution waits on, and where it is in its chart. */
export interface ExecutionWaits {
  outbox: OutgoingRequest[];
  timer: SagaTimer | null;
  version: number | null;
  updatedAt: number | null;
  /** The chart's state value (XState's `snapshot.value`). */
  value: SagaSnapshotLike['value'] | null;
}

/** Told about every store of this runtime. A listener that throws is logged and ignored. */
export type StoreListener = (event: StoreEvent) => void;

/** What the runtime is built on: adapters at the edge and the manager's choices. */
export interface SagaRuntimeOptions {
  repository: SagaRepository;
  broker: SagaBroker;
  definitions: DefinitionSource;
  clock: Clock;
  log: SagaLogger;
  controls: SagaExecutionControls;
  inspect?: InspectObserver;
  pollIntervalMs: number;
  /** Executions paused on disk also kept in memory (0: none). */
  pausedCacheSize: number;
}

/** An execution brought into memory for an event; `cached`: from the paused cache, maybe behind the repository. */
interface Brought {
  execution: LiveExecution;
  cached: boolean;
}

/** An event was applied and stored; the view of the execution right after it is built on demand. */
export interface Applied {
  view(): SagaExecution;
}

/**
 * The pump: runs executions on their definitions' transition tables. For each event, in the
 * execution's mailbox (one event at a time per execution, executions concurrently): load it if
 * it is paused on disk, check the event applies, step the table and run the handlers it asks for
 * until the execution rests, store the snapshot with its outbox in one write, then send the new
 * requests, arm the deadline, tell the waiters, and drop it from memory when it ended or waits
 * paused on disk. It reads what to do from the table's effects, never from the snapshot.
 */
export class SagaRuntime {
  readonly #repository: SagaRepository;
  readonly #broker: SagaBroker;
  readonly #definitions: DefinitionSource;
  readonly #clock: Clock;
  readonly #log: SagaLogger;
  readonly #controls: SagaExecutionControls;
  readonly #inspector: ExecutionInspector | undefined;
  readonly #executions: LiveExecutions;
  readonly #ignored: IgnoredResponses;
  readonly #mailboxes = new KeyedQueue();
  readonly #writer: SnapshotWriter;
  readonly #deadlines: DeadlineScheduler;
  readonly #recovery: Recovery;
  readonly #waiters: Waiters;
  readonly #listeners = new Set<StoreListener>();

  constructor(options: SagaRuntimeOptions) {
    this.#repository = options.repository;
    this.#broker = options.broker;
    this.#definitions = options.definitions;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#controls = options.controls;
    this.#inspector = options.inspect ? new ExecutionInspector(options.inspect, (err) => this.#log.warn?.('the inspector failed', { error: String(err) })) : undefined;
    this.#executions = new LiveExecutions(options.pausedCacheSize);
    this.#ignored = new IgnoredResponses(options.log, options.clock);
    this.#writer = new SnapshotWriter(options.repository, options.clock);
    this.#deadlines = new DeadlineScheduler(options.clock, (uuid: string) => this.#onDeadline(uuid));
    this.#waiters = new Waiters(
      {
        isLive: (uuid) => this.#executions.isLive(uuid),
        read: async (uuids) => (await this.#repository.loadMany(uuids)).map((record) => (record ? this.#restPointOf(record) : null)),
        now: () => this.#clock.now(),
        warn: (message, fields) => this.#log.warn?.(message, fields),
      },
      options.pollIntervalMs,
    );
    this.#recovery = new Recovery({
      repository: options.repository,
      clock: options.clock,
      log: options.log,
      isLive: (uuid) => this.#executions.isLive(uuid) || this.#mailboxes.busy(uuid),
      resume: (record) => this.#mailboxes.run(record.uuid, () => this.#resume(record)),
    });
  }

  /** Listens to every store from now on; returns the function that stops it. */
  onStore(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** What an execution waits on now: its outbox and deadline (in memory when it runs here, else as stored). */
  async waitsOf(uuid: string): Promise<ExecutionWaits> {
    const live = this.#executions.live(uuid);
    if (live) return { outbox: live.outbox(), timer: live.timer(), version: live.version, updatedAt: null, value: live.value };
    const record = await this.#repository.load(uuid);
    if (!record) throw new SagaExecutionNotFoundError(uuid);
    const value = (record.snapshot as { value?: unknown } | null)?.value ?? null;
    return { outbox: record.outbox, timer: record.timer, version: record.version, updatedAt: record.updatedAt, value: value as ExecutionWaits['value'] };
  }

  /** Executions held in memory. */
  get liveCount(): number {
    return this.#executions.size;
  }

  /** Executions paused on disk that are also kept in memory. */
  get cachedCount(): number {
    return this.#executions.cachedSize;
  }

  /** Responses ignored so far, by kind. */
  get ignoredResponses(): Readonly<Record<IgnoredKind, number>> {
    return this.#ignored.counts;
  }

  /** Deadlines armed (of executions in memory or paused on disk). */
  get armedDeadlines(): number {
    return this.#deadlines.size;
  }

  /**
   * Starts an execution; resolves when it ends, waits for a commit decision, or (with
   * `pauseOnDisk`) is first stored paused. Nothing is stored before its first wait.
   */
  run(definition: CompiledSaga, input: SagaMachineInput & { autocommit: boolean }, pauseOnDisk: boolean): Promise<SagaExecution> {
    const { uuid } = input;
    if (this.#executions.holds(uuid) || this.#mailboxes.busy(uuid)) return Promise.reject(new SagaAlreadyRunningError(uuid));
    const settled = this.#waiters.wait(uuid, pauseOnDisk ? 'run-paused' : 'run').promise;
    void this.#mailboxes.run(uuid, async () => {
      const execution = LiveExecution.create(definition, input, pauseOnDisk, this.#observe(definition));
      this.#executions.add(execution);
      const stepped = this.#step(execution, { type: 'saga.start' });
      if (stepped instanceof Promise ? await stepped : stepped) await this.#rest(execution);
    });
    return settled;
  }

  /** Delivers a participant's response (from the broker or `resume()`); `null` when it no longer applies. */
  respond(data: SagaResponseData): Promise<Applied | null> {
    const key = parseRequestId(data.requestId);
    if (!key) {
      this.#ignored.unknownRequestId(data.requestId);
      return Promise.resolve(null);
    }
    // An answer that cannot be taken as it is (too deep to store, a bad status) fails its attempt
    // like a 500, with the reason: the step retries or fails rather than waiting for ever.
    const problem = responseProblem(data);
    const taken = problem ? failedResponse(data.requestId, { code: 'SAGA_RESPONSE_INVALID', message: `the answer to ${data.requestId} was refused: ${problem}` }) : data;
    return this.#deliver(key.uuid, { kind: 'response', requestId: data.requestId, event: responseEvent(taken, key) });
  }

  /** Delivers a commit decision or an operator event; `null` when the chart would not take it now. */
  decide(uuid: string, event: SagaMachineEvent): Promise<Applied | null> {
    return this.#deliver(uuid, { kind: 'decision', event });
  }

  /** Waits for `until` on an execution (register it before sending the event that makes it due). */
  wait(uuid: string, until: WaitUntil, timeoutMs?: number, onTimeout?: () => unknown): Waiting {
    return this.#waiters.wait(uuid, until, timeoutMs, onTimeout);
  }

  /** The execution now: from memory when it runs here, else from its stored record (nothing restored). */
  async get(uuid: string): Promise<SagaExecution> {
    const live = this.#executions.live(uuid);
    if (live) return this.#view(live);
    const record = await this.#repository.load(uuid);
    if (!record) throw new SagaExecutionNotFoundError(uuid);
    return this.#restPointOf(record).view();
  }

  /**
   * The status of an execution: in memory here (live, or paused and cached), else as stored;
   * throws when there is none. A cached copy may be behind another manager's store, never ahead.
   */
  async statusOf(uuid: string): Promise<SagaStatus> {
    const here = this.#executions.live(uuid) ?? this.#executions.cached(uuid);
    if (here) return here.status;
    const record = await this.#repository.load(uuid);
    if (!record) throw new SagaExecutionNotFoundError(uuid);
    return record.status;
  }

  /** Picks up stored executions that are not done (see `SagaManager.recover`). */
  recover(options: RecoverOptions = {}): Promise<RecoveryReport> {
    return this.#recovery.recover(options);
  }

  /** Lets queued work finish, then drops everything from memory. Executions stay stored. */
  async close(err: () => unknown): Promise<void> {
    await this.#mailboxes.drain();
    this.#deadlines.clear();
    this.#executions.clear();
    this.#waiters.failAll(err);
  }

  // ----- the pump ------------------------------------------------------------------------------

  /**
   * One event into an execution's mailbox: brings the execution into memory (from the paused
   * cache, or restored from its record), checks the event applies, steps and rests. When the store
   * finds that someone else stored the execution since this copy was read, it is read again and
   * the event applied to that (once).
   */
  #deliver(uuid: string, delivery: Delivery): Promise<Applied | null> {
    return this.#mailboxes.run(uuid, async () => {
      for (let attempt = 0; ; attempt++) {
        const bringing = this.#bring(uuid, delivery, attempt > 0);
        const brought = bringing instanceof Promise ? await bringing : bringing;
        if (!brought) return null;
        const { execution, cached } = brought;
        const event = eventOf(delivery, execution, this.#clock.now());
        if ('why' in event) {
          if (event.rearmAt !== undefined) this.#deadlines.arm(uuid, event.rearmAt);
          if (execution.pauseOnDisk && execution.status !== SagaStatus.Running) this.#executions.park(execution);
          // A copy from the cache may be behind the repository (another manager moved it on): ask the repository.
          if (cached && attempt === 0) continue;
          // So may a live one, when another orchestrator took the execution over for a while (a
          // cluster member whose lease lapsed): an answer or a decision it does not expect is
          // checked against the stored version before it is ignored.
          if (attempt === 0 && delivery.kind !== 'deadline' && (await this.#movedOn(execution))) continue;
          return this.#ignoredEvent(uuid, delivery, event.why, { status: execution.status, steps: execution.context.steps, services: execution.context.services });
        }
        const stepped = this.#step(execution, event);
        if (!(stepped instanceof Promise ? await stepped : stepped)) return null;
        const outcome = await this.#rest(execution);
        if (outcome === 'stored') return { view: () => this.#view(execution) };
        if (outcome !== 'conflict' || attempt > 0) return null;
        this.#log.info?.('another manager stored this execution since it was read here; reading it again', { uuid, event: whatOf(delivery) });
      }
    });
  }

  /** Whether the repository holds a later version of the execution than this copy. */
  async #movedOn(execution: LiveExecution): Promise<boolean> {
    if (execution.version === null) return false;
    try {
      const record = await this.#repository.load(execution.uuid);
      return record !== null && record.version !== execution.version;
    } catch {
      return false;
    }
  }

  /** The execution in memory: live, from the paused cache (unless `fresh`), or restored from its record. */
  #bring(uuid: string, delivery: Delivery, fresh: boolean): Brought | null | Promise<Brought | null> {
    if (!fresh) {
      const here = this.#executions.take(uuid);
      if (here) return here;
    } else this.#executions.forget(uuid);
    return this.#load(uuid, delivery);
  }

  async #load(uuid: string, delivery: Delivery): Promise<Brought | null> {
    const record = await this.#repository.load(uuid);
    if (!record) return this.#ignoredEvent(uuid, delivery, 'no such execution');
    const refusal = refusalOf(delivery, record, this.#clock.now());
    if (refusal) {
      if (refusal.rearmAt !== undefined) this.#deadlines.arm(uuid, refusal.rearmAt);
      const context = (record.snapshot as { context?: { steps?: unknown; services?: unknown } } | null)?.context;
      const steps = context?.steps;
      const services = Array.isArray(context?.services) ? (context.services as unknown[]).filter((s): s is string => typeof s === 'string') : [];
      return this.#ignoredEvent(uuid, delivery, refusal.why, { status: record.status, steps: typeof steps === 'object' && steps !== null ? steps : {}, services });
    }
    const execution = await this.#restore(record);
    return execution ? { execution, cached: false } : null;
  }

  /** A restored execution in memory; runs what restoring asks for (handlers that were running) and stores the result. */
  async #restore(record: SagaRecord): Promise<LiveExecution | null> {
    const definition = this.#definitions.forRecord(record.sagaName, record.definitionHash);
    let restored: ReturnType<typeof LiveExecution.restore>;
    try {
      restored = LiveExecution.restore(definition, record, this.#observe(definition));
    } catch (err) {
      throw new SagaSnapshotError(record.uuid, `it does not restore onto ${definition.machine.id}: ${(err as Error).message}`, { cause: err });
    }
    const { execution, effects } = restored;
    this.#executions.add(execution);
    if (effects.length) {
      const ran = this.#run(execution, 'restore', () => execution.run(effects));
      if (!(ran instanceof Promise ? await ran : ran)) return null;
      if ((await this.#rest(execution)) !== 'stored' || this.#executions.live(record.uuid) !== execution) return null;
    }
    return execution;
  }

  /** Recovery of one stored execution, in its mailbox: re-send and re-arm a paused one; carry on one that was running. */
  async #resume(record: SagaRecord): Promise<'resent' | 'restarted' | 'skipped'> {
    if (this.#executions.isLive(record.uuid)) return 'skipped';
    const cached = this.#executions.cached(record.uuid);
    if (cached && (cached.version ?? 0) >= record.version) {
      // Held here, at least as new as the record read a moment ago: its own outbox is the current one.
      for (const request of cached.outbox()) this.#send(request);
      this.#deadlines.arm(record.uuid, cached.timer()?.at ?? null);
      return 'resent';
    }
    if (record.status === SagaStatus.Paused) {
      // Refuse a snapshot that cannot be restored now, rather than when its response comes.
      const definition = this.#definitions.forRecord(record.sagaName, record.definitionHash);
      try {
        LiveExecution.restore(definition, record);
      } catch (err) {
        throw new SagaSnapshotError(record.uuid, `it does not restore onto ${definition.machine.id}: ${(err as Error).message}`, { cause: err });
      }
      for (const request of record.outbox) this.#send(request);
      this.#deadlines.arm(record.uuid, record.timer?.at ?? null);
      return 'resent';
    }
    // Created or running when stored: restoring runs its interrupted handlers again.
    const execution = await this.#restore(record);
    if (execution?.status === SagaStatus.Created && (await this.#step(execution, { type: 'saga.start' }))) await this.#rest(execution);
    return 'restarted';
  }

  /** Steps the execution's table with one event and runs its handlers; `false` when the chart failed. Synchronous when the handlers are. */
  #step(execution: LiveExecution, event: SagaMachineEvent): boolean | Promise<boolean> {
    return this.#run(execution, event.type, () => execution.step(event as never));
  }

  #run(execution: LiveExecution, what: string, work: () => void | Promise<void>): boolean | Promise<boolean> {
    let pending: void | Promise<void>;
    try {
      pending = work();
    } catch (err) {
      return this.#chartFailed(execution, what, err);
    }
    return pending instanceof Promise ? pending.then(() => true, (err: unknown) => this.#chartFailed(execution, what, err)) : true;
  }

  #chartFailed(execution: LiveExecution, what: string, err: unknown): false {
    const error = new SagaChartError(execution.uuid, what, err);
    this.#log.error?.('an execution failed while running; it stays at its last stored state', { uuid: execution.uuid, event: what, error: error.message });
    this.#executions.drop(execution);
    this.#waiters.fail(execution.uuid, error);
    return false;
  }

  /**
   * The execution rests: store, then send its new requests, arm its deadline, tell its waiters,
   * and take it out of memory when it ended or waits paused on disk.
   */
  async #rest(execution: LiveExecution): Promise<StoreOutcome['kind']> {
    const { uuid } = execution;
    const firstStore = execution.version === null;
    const started = this.#listeners.size ? performance.now() : 0;
    const outcome = await this.#writer.store(execution);
    if (this.#listeners.size) this.#told(execution, outcome, performance.now() - started);
    if (outcome.kind !== 'stored') {
      this.#executions.drop(execution);
      if (outcome.kind === 'conflict' && firstStore) {
        this.#waiters.fail(uuid, new SagaAlreadyRunningError(uuid));
      } else if (outcome.kind === 'failed') {
        const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
        this.#log.error?.('could not store an execution; it is released from memory and carries on from its last stored state on recovery', { uuid, error: message });
        this.#waiters.fail(uuid, outcome.error);
      }
      // A conflict past the first store: another manager moved it on; waiters here follow it through the repository.
      return outcome.kind;
    }
    const { record } = outcome;
    let unsendable = false;
    for (const request of execution.takeUnsent()) if (!this.#send(request)) unsendable = true;
    this.#deadlines.arm(uuid, record.timer?.at ?? null);
    const awaitingCommit = execution.awaitingCommit;
    // A request the broker refused fails its attempt next (a 500 on its way in): waiters hear of
    // the execution after that, so `run()` with pauseOnDisk answers with what the failure led to
    // (a retry paused again, or the execution errored), not with a pause that is already over.
    if (!unsendable) this.#waiters.notify(uuid, { status: record.status, awaitingCommit, view: () => this.#view(execution) });
    if (isFinalStatus(record.status)) this.#executions.drop(execution);
    // Paused on disk; so is one that waits for its commit decision, whatever `pauseOnDisk` says:
    // `run()` has answered, and nothing comes for it but a decision, which finds it there.
    else if (record.status === SagaStatus.Paused && (execution.pauseOnDisk || awaitingCommit)) this.#executions.park(execution);
    return 'stored';
  }

  #told(execution: LiveExecution, outcome: StoreOutcome, storeMs: number): void {
    const event: StoreEvent = {
      uuid: execution.uuid,
      sagaName: execution.definition.saga.name,
      outcome: outcome.kind,
      status: outcome.kind === 'stored' ? outcome.record.status : execution.status,
      version: outcome.kind === 'stored' ? outcome.record.version : execution.version,
      storeMs,
      view: () => this.#view(execution),
    };
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.warn?.('a store listener failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /**
   * Hands a request to the broker. A broker that throws (it should queue and retry instead) does
   * not hang the execution: the attempt fails like a 500 with `SAGA_BROKER_FAILED`, so the step
   * retries per its policy and then fails, and the saga rolls back or ends errored.
   */
  #send(request: OutgoingRequest): boolean {
    try {
      this.#broker.send(request);
      return true;
    } catch (err) {
      const message = `the broker could not send ${request.requestId} to ${request.target}: ${err instanceof Error ? err.message : String(err)}`;
      this.#log.error?.('the broker failed to send a request; the attempt fails', { uuid: request.uuid, requestId: request.requestId, error: message });
      void this.respond(failedResponse(request.requestId, { code: 'SAGA_BROKER_FAILED', message })).catch((e: unknown) =>
        this.#log.error?.('could not fail an attempt the broker did not send', { requestId: request.requestId, error: String(e) }),
      );
      return false;
    }
  }

  #onDeadline(uuid: string): void {
    this.#deliver(uuid, DEADLINE).catch((err: unknown) => this.#log.warn?.('could not deliver a deadline', { uuid, error: err instanceof Error ? err.message : String(err) }));
  }

  /** An event that does not apply: a response is counted and logged by kind (see {@link IgnoredResponses}); anything else logged. */
  #ignoredEvent(uuid: string, delivery: Delivery, why: string, seen?: Seen): null {
    if (delivery.kind === 'response') {
      const step = delivery.event.type === 'saga.response' ? delivery.event.step : '';
      this.#ignored.ignore(uuid, delivery.requestId, step, why, seen);
    } else this.#log.info?.('ignored an event that no longer applies', { uuid, event: whatOf(delivery), why });
    return null;
  }

  #observe(definition: CompiledSaga): ((uuid: string) => ReturnType<ExecutionInspector['observe']>) | undefined {
    const inspector = this.#inspector;
    return inspector ? (uuid) => inspector.observe(uuid, definition.machine) : undefined;
  }

  #view(execution: LiveExecution): SagaExecution {
    return new SagaExecution(execution.definition, execution.snapshot, this.#controls);
  }

  /** How a stored record reads, nothing restored. */
  #restPointOf(record: SagaRecord): RestPoint {
    return restPointOf(this.#definitions.forRecord(record.sagaName, record.definitionHash), record, this.#controls);
  }
}

export type { RecoveryReport };
