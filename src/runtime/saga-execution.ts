import type { CompiledSaga } from '../../machines/compile.js';
import { isAwaitingCommit, sagaStatusOf, stepViewsOf, type SagaSnapshotLike, type SagaStepView } from '../../machines/read.js';
import type { FailureInfo, HistoryEntry, TransactionRecord } from '../../machines/types.js';
import { SagaContext } from '../context.js';
import { SagaInvalidStateError } from '../errors/saga-invalid-state-error.js';
import type { ErrorInfo } from '../json.js';
import type { StepPhase, TransactionPhase } from '../messages/request-id.js';
import { SagaStepStatus, type SagaStatus } from '../status.js';

/** What a `SagaExecution` can ask of the manager that made it. */
export interface SagaExecutionControls {
  commit(uuid: string): Promise<SagaExecution>;
  reject(uuid: string): Promise<SagaExecution>;
  rollback(uuid: string): Promise<SagaExecution>;
}

/** A failure of one step, in the execution's list of failures. */
export interface SagaStepFailure extends ErrorInfo {
  step: string;
  phase: StepPhase;
}

/**
 * The two-phase commit of an execution's participants' transactions: its id (the execution's
 * uuid, which every request carries), the phase under way, and how each phase that ran ended.
 */
export interface SagaTransactionView extends TransactionRecord {
  id: string;
  /** The phase under way: its messages are out and the execution waits for the answers. */
  phase: TransactionPhase | null;
}

/** The phase of the two-phase commit the execution is in, read off its state. */
function transactionPhaseOf(snapshot: SagaSnapshotLike): TransactionPhase | null {
  const running = typeof snapshot.value === 'object' ? (snapshot.value as Record<string, unknown>)['running'] : undefined;
  if (typeof running !== 'object' || running === null) return null;
  const inner = running as Record<string, unknown>;
  const phase = inner['$commit'] ?? inner['$reject'];
  return phase === 'reserve' || phase === 'commit' || phase === 'reject' ? phase : null;
}

/**
 * A read-only view of one execution at one moment: status, steps, context, errors. Get a fresh
 * one with `manager.get(uuid)`. With `autocommit: false`, `commit()` / `reject()` / `rollback()`
 * decide what happens to an execution whose steps are done.
 *
 * @example
 * ```ts
 * const execution = await manager.run(CREATE_ORDER, { context: { items } });
 * console.log(execution.status, execution.steps.map((s) => `${s.name}: ${s.status}`));
 * ```
 */
export class SagaExecution {
  readonly uuid: string;
  readonly sagaName: string;
  readonly definitionHash: string;
  readonly status: SagaStatus;
  readonly steps: readonly SagaStepView[];
  /** The saga's data (a copy). */
  readonly context: SagaContext;
  /** The failure that started the rollback, or `null`. */
  readonly error: FailureInfo | null;
  /** Every failure, of steps and of compensations, in step order. */
  readonly errors: readonly SagaStepFailure[];
  /** Waiting for `commit()` or `reject()` (run with `autocommit: false`). */
  readonly awaitingCommit: boolean;
  /** Services that took part: request targets and their `relatedServices`. */
  readonly services: readonly string[];
  /** What operators and commit decisions did to the execution, in order (action, time, note). */
  readonly history: readonly HistoryEntry[];
  /** The two-phase commit of the participants' transactions: the phase under way, and how each that ran ended. */
  readonly transaction: SagaTransactionView;
  /** The path of the step the execution waits on (its request or its compensation's), or `null`. */
  readonly pausedStep: string | null;
  /** A rollback has started: some step's compensation has run, or the execution is rolling back. */
  readonly alreadyRollback: boolean;
  /** Who started the execution (`run(saga, { user })`), or `null`. */
  readonly user: string | null;
  /** The definition's `onSuccess` / `onFailure` callback that failed (it changed nothing else), and how. */
  readonly callbackErrors: { readonly onSuccess?: ErrorInfo; readonly onFailure?: ErrorInfo };
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly #controls: SagaExecutionControls | undefined;

  /** @internal Built by the manager from a snapshot. */
  constructor(compiled: CompiledSaga, snapshot: SagaSnapshotLike, controls?: SagaExecutionControls) {
    const ctx = snapshot.context;
    this.uuid = ctx.uuid;
    this.sagaName = ctx.sagaName;
    this.definitionHash = compiled.saga.hash;
    this.status = sagaStatusOf(snapshot);
    this.steps = stepViewsOf(compiled.steps, snapshot);
    this.context = new SagaContext(ctx.data);
    this.error = ctx.failure;
    this.errors = this.steps.flatMap((s) => [
      ...(s.error ? [{ step: s.path, phase: 'execute' as const, ...s.error }] : []),
      ...(s.compensation?.error ? [{ step: s.path, phase: 'compensate' as const, ...s.compensation.error }] : []),
    ]);
    this.awaitingCommit = isAwaitingCommit(snapshot);
    this.services = [...ctx.services];
    this.history = [...(ctx.history ?? [])];
    this.transaction = { id: ctx.uuid, phase: transactionPhaseOf(snapshot), ...(ctx.transaction ?? {}) };
    const waiting = this.steps.filter((s) => s.status === SagaStepStatus.PausedByOnExecute || s.status === SagaStepStatus.PausedOnFailure);
    this.pausedStep = waiting.at(-1)?.path ?? null;
    this.alreadyRollback = ctx.failure !== null || this.steps.some((s) => s.compensation !== null);
    this.user = ctx.user ?? null;
    this.callbackErrors = { ...(ctx.callbackErrors ?? {}) };
    this.createdAt = ctx.createdAt;
    this.startedAt = ctx.startedAt;
    this.finishedAt = ctx.finishedAt;
    this.#controls = controls;
  }

  /** The step named (or with the path) `name`. */
  step(name: string): SagaStepView | undefined {
    return this.steps.find((s) => s.path === name) ?? this.steps.find((s) => s.name === name);
  }

  /** Finishes an execution waiting for its commit decision. Resolves with the finished execution. */
  commit(): Promise<SagaExecution> {
    return this.#control().commit(this.uuid);
  }

  /**
   * Refuses an execution waiting for its commit decision: its steps are compensated, in reverse,
   * and it ends `errored` with `SAGA_REJECTED`.
   */
  reject(): Promise<SagaExecution> {
    return this.#control().reject(this.uuid);
  }

  /** Compensates every executed step of an execution waiting for its commit decision. */
  rollback(): Promise<SagaExecution> {
    return this.#control().rollback(this.uuid);
  }

  toJSON() {
    return {
      uuid: this.uuid,
      sagaName: this.sagaName,
      definitionHash: this.definitionHash,
      status: this.status,
      steps: this.steps,
      context: this.context.toJSON(),
      error: this.error,
      errors: this.errors,
      awaitingCommit: this.awaitingCommit,
      services: this.services,
      history: this.history,
      transaction: this.transaction,
      pausedStep: this.pausedStep,
      alreadyRollback: this.alreadyRollback,
      user: this.user,
      callbackErrors: this.callbackErrors,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
    };
  }

  #control(): SagaExecutionControls {
    if (!this.#controls) throw new SagaInvalidStateError(this.uuid, 'this view was not made by a SagaManager; get it with manager.get(uuid).');
    return this.#controls;
  }
}
