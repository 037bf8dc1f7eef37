import type { AnyActorRef, StateValue } from 'xstate';
import type { ErrorInfo } from '../src/json.js';
import type { OutgoingRequest } from '../src/messages/outgoing-request.js';
import type { SagaTimer } from '../src/messages/saga-timer.js';
import { SagaStatus, SagaStepStatus } from '../src/status.js';
import type { Saga } from '../src/definition/saga.js';
import { compileDefinition } from './compile.js';
import { requestOf, timerOf, transactionRequestOf, transactionTimerOf } from './effects.js';
import type { CompiledStep } from './step-states.js';
import type { RemoteStepContext, SagaMachineContext, TransactionContext } from './types.js';

/**
 * What the readers need of a snapshot: an XState actor's, the runtime's live state, or a stored
 * snapshot read with the tags of its state.
 */
export interface SagaSnapshotLike {
  value: StateValue;
  context: SagaMachineContext;
  hasTag(tag: string): boolean;
}

/**
 * The execution's status, read off the chart: `created`, `finished` and `errored` are top-level
 * states; inside `running`, the `paused` tag marks a wait on the outside world.
 */
export function sagaStatusOf(snapshot: SagaSnapshotLike): SagaStatus {
  const value = snapshot.value;
  if (typeof value === 'string') return value as SagaStatus;
  return snapshot.hasTag('paused') ? SagaStatus.Paused : SagaStatus.Running;
}

/** Whether the execution waits for `commit()` or `reject()` (it ran with `autocommit: false`). */
export function isAwaitingCommit(snapshot: SagaSnapshotLike): boolean {
  const value = snapshot.value;
  return typeof value === 'object' && (value as Record<string, StateValue>)['running'] === 'awaiting-commit';
}

/** One step of an execution, as a user sees it. */
export interface SagaStepView {
  name: string;
  /** Unique within the execution: `shipping/express/arrange` for a step of a branch. */
  path: string;
  kind: 'local' | 'remote' | 'conditional';
  status: SagaStepStatus;
  /** Path of the conditional step whose branch holds this step. */
  parent: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: ErrorInfo | null;
  /**
   * Attempts of the request that have ended (remote steps): counted when the step's wait ends, so
   * a step waiting on its first answer shows 0; the attempt in flight is in the outbox.
   */
  attempts: number;
  /** A remote step whose onExecute returned no request. */
  skipped: boolean;
  /** A conditional step's chosen branch; `null` when none held or not yet decided. */
  branch: string | null;
  /** The step's compensation ran to success. */
  compensated: boolean;
  compensation: { startedAt: number; finishedAt: number | null; error: ErrorInfo | null; attempts: number; resolved: boolean } | null;
}

function stateAt(value: StateValue, path: readonly string[]): StateValue | undefined {
  let current: StateValue | undefined = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, StateValue>)[key];
  }
  return current;
}

const COMPENSATING: ReadonlySet<SagaStepStatus> = new Set([SagaStepStatus.RunningOnFailure, SagaStepStatus.PausedOnFailure]);

function statusOf(step: CompiledStep, snapshot: SagaSnapshotLike): SagaStepStatus {
  const active = stateAt(snapshot.value, step.statePath);
  const rec = snapshot.context.steps[step.path];
  if (active === undefined || active === 'compensated' || active === 'errored-on-failure') {
    if (!rec) return SagaStepStatus.Created;
    if (rec.compensated === false && rec.compensation?.error) return SagaStepStatus.ErroredOnFailure;
    return rec.status ?? SagaStepStatus.Created;
  }
  if (active === 'compensate') return SagaStepStatus.RunningOnFailure;
  if (typeof active === 'string') return active as SagaStepStatus;
  // A conditional step inside its branch: its status follows the branch's active step.
  const branch = step.branches.find((b) => b.key === rec?.branch);
  for (const inner of branch?.steps ?? []) {
    if (stateAt(snapshot.value, inner.statePath) === undefined) continue;
    const innerStatus = statusOf(inner, snapshot);
    if (COMPENSATING.has(innerStatus)) return innerStatus;
    if (innerStatus === SagaStepStatus.PausedByOnExecute) return innerStatus;
  }
  return SagaStepStatus.RunningOnSuccess;
}

function viewsOf(steps: readonly CompiledStep[], snapshot: SagaSnapshotLike, parent: string | null, out: SagaStepView[]): SagaStepView[] {
  for (const step of steps) {
    const rec = snapshot.context.steps[step.path];
    const comp = rec?.compensation;
    out.push({
      name: step.name,
      path: step.path,
      kind: step.kind,
      status: statusOf(step, snapshot),
      parent,
      startedAt: rec?.startedAt ?? null,
      finishedAt: rec?.finishedAt ?? null,
      error: rec?.error ?? null,
      attempts: rec?.attempts ?? 0,
      skipped: rec?.skipped === true,
      branch: rec?.branch ?? null,
      compensated: rec?.compensated === true,
      compensation: comp
        ? { startedAt: comp.startedAt, finishedAt: comp.finishedAt ?? null, error: comp.error ?? null, attempts: comp.attempts ?? 0, resolved: comp.resolved === true }
        : null,
    });
    const branch = step.branches.find((b) => b.key === rec?.branch);
    if (branch) viewsOf(branch.steps, snapshot, step.path, out);
  }
  return out;
}

/**
 * Every step of the execution in definition order, with the chosen branch of each conditional
 * step right after it (branches not taken are left out).
 */
export function stepViews(saga: Saga<object>, snapshot: SagaSnapshotLike): SagaStepView[] {
  return viewsOf(compileDefinition(saga).steps, snapshot, null, []);
}

/** {@link stepViews} of a compiled definition's steps. */
export function stepViewsOf(steps: readonly CompiledStep[], snapshot: SagaSnapshotLike): SagaStepView[] {
  return viewsOf(steps, snapshot, null, []);
}

/** What an execution waits for: requests to send and deadlines to arm. */
export interface PendingWork {
  requests: OutgoingRequest[];
  timers: SagaTimer[];
}

/**
 * The outbox and the deadlines of an execution, read off its children: a remote-step child in
 * `waiting` holds a request to send, and a deadline when it has one; a transaction child holds a
 * request for each service it waits on, and one deadline.
 */
export function pendingWork(snapshot: { context: SagaMachineContext; children: Record<string, AnyActorRef | undefined> }): PendingWork {
  const requests: OutgoingRequest[] = [];
  const timers: SagaTimer[] = [];
  for (const ref of Object.values(snapshot.children)) {
    if (!ref || (ref.src !== 'remoteStep' && ref.src !== 'transaction')) continue;
    const child = ref.getSnapshot() as { value: StateValue; context: unknown; status: string };
    if (child.status !== 'active') continue;
    if (ref.src === 'transaction') {
      const c = child.context as TransactionContext;
      for (const part of c.parts) if (part.state === 'waiting') requests.push(transactionRequestOf(c, part));
      const timer = transactionTimerOf(c);
      if (timer) timers.push(timer);
      continue;
    }
    const c = child.context as RemoteStepContext;
    if (child.value === 'waiting') requests.push(requestOf(c));
    const timer = timerOf(c);
    if (timer) timers.push(timer);
  }
  return { requests, timers };
}
