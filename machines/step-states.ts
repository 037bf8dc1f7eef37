import { assign, sendTo } from 'xstate';
import type { ConditionalSagaStep, LocalSagaStep, RemoteSagaStep, SagaStep, SagaStepKind } from '../src/definition/steps.js';
import type { StepPhase } from '../src/messages/request-id.js';
import { serviceOf } from '../src/messages/saga-request.js';
import {
  answered,
  gaveUp,
  handlerOutput,
  notOk,
  remoteError,
  remoteOutput,
  type ActionArgs,
  type ChartActions,
  type Route,
} from './actions.js';
import { compensationFailed } from './compensation.js';
import { waitKey } from './effects.js';
import type { HandlerInput, RemoteStepInput } from './types.js';

/** A step as compiled: where its state is and what it holds. */
export interface CompiledStep {
  path: string;
  name: string;
  kind: SagaStepKind;
  /** State keys from the root to the step's state. */
  statePath: string[];
  compensable: boolean;
  branches: Array<{ key: string; steps: CompiledStep[] }>;
  definition: SagaStep;
}

/** Where a list of steps sits: the whole saga, or one branch of a conditional step. */
export interface Scope {
  prefix: string;
  statePath: string[];
  /** Where the chart goes after the list's last step finishes. */
  after: Route[];
  /** Where the rollback goes after the list's first step is compensated. */
  before: string;
}

type StateConfig = Record<string, unknown>;

/** State ids of the top level, out of reach of step names (which cannot start with `$`). */
export const ERRORED_ID = '$errored';
export const FINISHED_ID = '$finished';
export const AWAITING_COMMIT_ID = '$awaiting-commit';
/** The two-phase commit of the participants' transactions: reserve, then commit. */
export const COMMIT_ID = '$commit';
/** Where every rollback ends: the participants' transactions are rejected. */
export const REJECT_ID = '$reject';

/** Child actor ids: deterministic, so snapshots restore across processes. */
const handlerId = (path: string, hook: HandlerHookName) => `${path}:${hook}`;
type HandlerHookName = HandlerInput['hook'];

/** A request handler returned no request: the step (or compensation) is skipped. */
const noRequest = (args: ActionArgs): boolean => !(handlerOutput(args) as { request?: unknown }).request;

const handlerInput =
  (path: string, hook: HandlerHookName, withResponse = false) =>
  ({ context, event }: ActionArgs): HandlerInput => {
    const input: HandlerInput = { step: path, hook, data: context.data };
    if (withResponse) input.response = (remoteOutput({ context, event }) as { response: HandlerInput['response'] }).response;
    return input;
  };

/**
 * Invokes one handler of a step: a failure (returned, thrown, or the actor erroring) takes
 * `onFail`; success takes the first of `onOk` whose guard holds.
 */
function invokeHandler(path: string, hook: HandlerHookName, onFail: { target: string; actions: unknown[] }, onOk: Route[], withResponse = false) {
  return {
    id: handlerId(path, hook),
    src: 'handler',
    input: handlerInput(path, hook, withResponse),
    onDone: [{ guard: notOk, ...onFail }, ...onOk],
    onError: onFail,
  };
}

/** Compiles a list of steps into sibling states; returns where the rollback of the whole list starts. */
export function compileList(steps: readonly SagaStep[], scope: Scope, a: ChartActions): { states: Record<string, StateConfig>; compiled: CompiledStep[]; lastCompensation: string } {
  const states: Record<string, StateConfig> = {};
  const compiled: CompiledStep[] = [];
  let before = scope.before;
  steps.forEach((step, i) => {
    const path = scope.prefix + step.name;
    const nextStep = steps[i + 1];
    const next: Route[] = nextStep ? [{ target: `#${scope.prefix}${nextStep.name}` }] : scope.after;
    const at = { path, statePath: [...scope.statePath, step.name], before, next };
    let built: { state: StateConfig; compiled: CompiledStep; entry: string };
    if (step.kind === 'local') built = localStep(step, at, a);
    else if (step.kind === 'remote') built = remoteStep(step, at, a);
    else built = conditionalStep(step, at, a);
    states[step.name] = built.state;
    compiled.push(built.compiled);
    before = built.entry;
  });
  return { states, compiled, lastCompensation: before };
}

interface At {
  path: string;
  statePath: string[];
  /** Where the rollback goes once this step is compensated (or has nothing to compensate). */
  before: string;
  /** Where the chart goes once this step finishes. */
  next: Route[];
}

const base = (step: SagaStep, at: At, compensable: boolean): CompiledStep => ({
  path: at.path,
  name: step.name,
  kind: step.kind,
  statePath: at.statePath,
  compensable,
  branches: [],
  definition: step,
});

/** The error recorded on the step an operator aborted. */
const abortError = (): { code: string; message: string } => ({ code: 'SAGA_ABORTED', message: 'the execution was aborted by an operator while this step ran' });

/** While the execution moves forward (no rollback under way), an operator may abort it. */
const movingForward = ({ context }: ActionArgs): boolean => context.failure === null;

/**
 * An operator aborts the execution while this step is its current one: the step stops, and the
 * rollback starts from `target` (the step's own compensation when its participant may have acted).
 */
function abortTo(target: string, a: ChartActions, path: string | null) {
  return {
    'saga.abort': {
      guard: movingForward,
      target,
      actions: [a.aborted, ...(path ? [a.fail(path, abortError), a.exit(path, 'errored-by-on-execute')] : []), a.remember('abort')],
    },
  };
}

/** After a compensation: back to `errored` when an operator retried just this one, else on backwards. */
const afterCompensation = (at: At): Route[] => [
  { guard: ({ context }) => context.retrying === at.path, target: `#${ERRORED_ID}`, actions: [assign({ retrying: null })] },
  { target: at.before },
];

/** The compensation states shared by local and remote steps: how the compensation ended. */
function compensationEnds(at: At): Record<string, StateConfig> {
  return {
    'errored-on-failure': { always: afterCompensation(at) },
    compensated: { always: afterCompensation(at) },
  };
}

function localStep(step: LocalSagaStep<object>, at: At, a: ChartActions) {
  const { path } = at;
  const compensable = step.onFailureHandler !== undefined;
  const states: Record<string, StateConfig> = {
    created: { always: 'running-on-execute' },
    'running-on-execute': {
      entry: a.start(path),
      invoke: invokeHandler(path, 'onExecute', { target: 'errored-on-execute', actions: [a.fail(path, a.handlerError)] }, [
        { target: 'finished', actions: [a.setData] },
      ]),
    },
    'errored-on-execute': { entry: a.exit(path, 'errored-on-execute'), always: at.before },
    finished: { entry: a.exit(path, 'finished'), always: at.next },
  };
  if (compensable) {
    Object.assign(states, {
      'running-on-failure': {
        tags: ['compensating'],
        entry: a.compensationStart(path),
        invoke: invokeHandler(path, 'onFailure', { target: 'errored-on-failure', actions: [a.compensationEnd(path, a.handlerError)] }, [
          { target: 'compensated', actions: [a.setData, a.compensationEnd(path, null)] },
        ]),
      },
      ...compensationEnds(at),
    });
  }
  return {
    state: { id: path, initial: 'created', states, on: abortTo(at.before, a, null) },
    compiled: base(step, at, compensable),
    entry: compensable ? `#${path}.running-on-failure` : at.before,
  };
}

/** The paused state of a remote phase: invokes the child that holds the request, forwards replies to it. */
function waitFor(path: string, phase: StepPhase, step: RemoteSagaStep<object>, onDone: Route[], a: ChartActions) {
  const id = waitKey(path, phase);
  const forMe = ({ event }: ActionArgs) => event.step === path && event.phase === phase;
  const forward = { guard: forMe, actions: sendTo(id, ({ event }: ActionArgs) => event as never) };
  const retryNow = { guard: ({ event }: ActionArgs) => event.step === path, actions: [a.remember('retry-step'), sendTo(id, ({ event }: ActionArgs) => event as never)] };
  return {
    tags: phase === 'execute' ? ['paused'] : ['paused', 'compensating'],
    invoke: {
      id,
      src: 'remoteStep',
      input: ({ context, event }: ActionArgs): RemoteStepInput => {
        const out = handlerOutput({ context, event });
        const request = out.ok && out.request ? out.request : { target: '', content: null };
        return {
          uuid: context.uuid,
          sagaName: context.sagaName,
          step: path,
          phase,
          target: request.target,
          content: request.content,
          // Request ids must be new for a retried compensation, or participants replay the old answer.
          firstAttempt: phase === 'compensate' ? (context.steps[path]?.compensation?.attempts ?? 0) + 1 : 1,
          maxAttempts: step.retryPolicy?.attempts ?? 1,
          backoffMs: step.retryPolicy?.backoffMs ?? 0,
          timeoutMs: step.timeoutMs ?? null,
          ...(context.user ? { user: context.user } : {}),
        };
      },
      onDone,
    },
    on: { 'saga.response': forward, 'saga.deadline': forward, 'saga.retry-step': retryNow },
  };
}

function remoteStep(step: RemoteSagaStep<object>, at: At, a: ChartActions) {
  const { path } = at;
  const compensable = step.onFailureHandler !== undefined;
  const self = compensable ? `#${path}.compensate` : at.before;
  const attempts = (args: ActionArgs) => remoteOutput(args).attempts;
  const responded = a.record(path, (args) => ({ attempts: attempts(args) }));
  const related = a.addServices((args) => {
    const out = remoteOutput(args);
    return out.kind === 'response' ? [...out.response.relatedServices, ...(out.response.service ? [out.response.service] : [])] : [];
  });
  const responseHandler = (hook: 'onSuccess' | 'onError', errored: string) => ({
    invoke: invokeHandler(path, hook, { target: errored, actions: [a.fail(path, a.handlerError)] }, [{ target: 'finished', actions: [a.setData] }], true),
  });
  const states: Record<string, StateConfig> = {
    created: { always: 'running-on-execute' },
    'running-on-execute': {
      entry: a.start(path),
      invoke: invokeHandler(path, 'onExecute', { target: 'errored-on-execute', actions: [a.fail(path, a.handlerError)] }, [
        { guard: noRequest, target: 'finished', actions: [a.setData, a.record(path, () => ({ skipped: true }))] },
        {
          target: 'finished-on-execute',
          actions: [a.setData, a.addServices((args) => [serviceOf((handlerOutput(args) as { request: { target: string } }).request.target)])],
        },
      ]),
    },
    'errored-on-execute': { entry: a.exit(path, 'errored-on-execute'), always: at.before },
    'finished-on-execute': { always: 'paused-by-on-execute' },
    'paused-by-on-execute': waitFor(path, 'execute', step, [
      { guard: gaveUp, target: 'errored-by-on-execute', actions: [responded, a.fail(path, remoteError)] },
      ...(step.onSuccessHandler ? [{ guard: answered(200), target: 'running-on-success', actions: [responded, related] }] : []),
      { guard: answered(200), target: 'finished', actions: [responded, related] },
      ...(step.onErrorHandler ? [{ guard: answered(400), target: 'running-on-error', actions: [responded, related] }] : []),
      { target: 'errored-by-on-execute', actions: [responded, related, a.fail(path, remoteError)] },
    ], a),
    'errored-by-on-execute': { entry: a.exit(path, 'errored-by-on-execute'), always: at.before },
    ...(step.onSuccessHandler ? { 'running-on-success': responseHandler('onSuccess', 'errored-on-success') } : {}),
    ...(step.onSuccessHandler ? { 'errored-on-success': { entry: a.exit(path, 'errored-on-success'), always: self } } : {}),
    ...(step.onErrorHandler ? { 'running-on-error': responseHandler('onError', 'errored-on-error') } : {}),
    ...(step.onErrorHandler ? { 'errored-on-error': { entry: a.exit(path, 'errored-on-error'), always: self } } : {}),
    finished: { entry: a.exit(path, 'finished'), always: at.next },
  };
  if (compensable) {
    Object.assign(states, {
      // A skipped step sent nothing, so there is nothing to undo.
      compensate: {
        always: [{ guard: ({ context }: ActionArgs) => context.steps[path]?.skipped === true, target: at.before }, { target: 'running-on-failure' }],
      },
      'running-on-failure': {
        tags: ['compensating'],
        entry: a.compensationStart(path),
        invoke: invokeHandler(path, 'onFailure', { target: 'errored-on-failure', actions: [a.compensationEnd(path, a.handlerError)] }, [
          { guard: noRequest, target: 'compensated', actions: [a.setData, a.compensationEnd(path, null)] },
          { target: 'paused-on-failure', actions: [a.setData] },
        ]),
      },
      'paused-on-failure': waitFor(path, 'compensate', step, [
        { guard: answered(200), target: 'compensated', actions: [a.compensationEnd(path, null, attempts)] },
        { target: 'errored-on-failure', actions: [a.compensationEnd(path, remoteError, attempts)] },
      ], a),
      ...compensationEnds(at),
    });
  }
  return {
    // Aborted while it waits: its participant may have acted, so the step is compensated too.
    state: { id: path, initial: 'created', states, on: abortTo(self, a, path) },
    compiled: base(step, at, compensable),
    entry: self,
  };
}

function descendants(steps: readonly CompiledStep[]): string[] {
  return steps.flatMap((s) => [s.path, ...s.branches.flatMap((b) => descendants(b.steps))]);
}

function conditionalStep(step: ConditionalSagaStep<object>, at: At, a: ChartActions) {
  const { path } = at;
  const compiled = base(step, at, true);
  const branchStates: Record<string, StateConfig> = {};
  const dispatch: Route[] = [];
  for (const branch of step.branches) {
    const list = compileList(
      branch.saga.steps,
      {
        prefix: `${path}/${branch.key}/`,
        statePath: [...at.statePath, 'running-on-success', branch.key],
        after: [{ target: `#${path}.finished` }],
        before: at.before,
      },
      a,
    );
    branchStates[branch.key] = { initial: branch.saga.steps[0]!.name, states: list.states };
    compiled.branches.push({ key: branch.key, steps: list.compiled });
    dispatch.push({ guard: ({ context }) => context.steps[path]?.branch === branch.key, target: list.lastCompensation });
  }
  const chosen = (args: ActionArgs) => (handlerOutput(args) as { branch?: string | null }).branch ?? null;
  const states: Record<string, StateConfig> = {
    created: { always: 'running-on-execute' },
    'running-on-execute': {
      entry: a.start(path),
      invoke: invokeHandler(path, 'condition', { target: 'errored-on-execute', actions: [a.fail(path, a.handlerError)] }, [
        ...step.branches.map((b) => ({
          guard: (args: ActionArgs) => chosen(args) === b.key,
          target: `#${path}.running-on-success.${b.key}`,
          actions: [a.record(path, () => ({ branch: b.key }))],
        })),
        { target: 'finished', actions: [a.record(path, () => ({ branch: null }))] },
      ]),
    },
    'errored-on-execute': { entry: a.exit(path, 'errored-on-execute'), always: at.before },
    'running-on-success': { initial: step.branches[0]!.key, states: branchStates },
    compensate: { always: [...dispatch, { target: at.before }] },
    finished: { entry: a.exit(path, 'finished'), always: at.next },
  };
  // Leaving the step while rolling back means its branch was undone (or failed part-way); it
  // counts as compensated when no compensation inside the branch failed unresolved.
  const inner = new Map(compiled.branches.map((b) => [b.key, descendants(b.steps)]));
  const exit = a.record(path, ({ context }) => {
    const rec = context.steps[path];
    if (!context.failure || !rec?.branch) return {};
    const failed = (inner.get(rec.branch) ?? []).some((p) => compensationFailed(context.steps[p]));
    return { status: rec.status ?? 'errored-by-on-execute', finishedAt: rec.finishedAt ?? a.now(), compensated: !failed };
  });
  return {
    state: { id: path, initial: 'created', exit, states, on: abortTo(at.before, a, null) },
    compiled,
    entry: `#${path}.compensate`,
  };
}
