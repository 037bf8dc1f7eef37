import { assign, createActor, sendTo, setup, type Actor, type ActorOptions, type InspectionEvent, type Observer, type Snapshot } from 'xstate';
import { systemClock, type Clock } from '../src/clock.js';
import type { Saga } from '../src/definition/saga.js';
import { SagaNotCommittedError } from '../src/errors/saga-not-committed-error.js';
import { chartActions, notOk, type ActionArgs } from './actions.js';
import { compensationFailed } from './compensation.js';
import { createHandlerActor, handlerRunner, type HandlerRunner } from './handler-actor.js';
import { isTransactionStep, transactionChildId, transactionService } from './effects.js';
import { createRemoteStepMachine } from './remote-step-machine.js';
import { createTransactionMachine } from './transaction-machine.js';
import { StateTable } from './table/state-table.js';
import { AWAITING_COMMIT_ID, COMMIT_ID, compileList, ERRORED_ID, FINISHED_ID, REJECT_ID, type CompiledStep } from './step-states.js';
import { SAGA_CALLBACK_STEP, type HandlerInput, type SagaMachineContext, type SagaMachineEvent, type SagaMachineInput, type TransactionInput, type TransactionOutput } from './types.js';
import type { TransactionPhase } from '../src/messages/request-id.js';

function machineSetup(runHandler: HandlerRunner, clock: Clock) {
  return setup({
    types: {
      context: {} as SagaMachineContext,
      events: {} as SagaMachineEvent,
      input: {} as SagaMachineInput,
    },
    actors: {
      handler: createHandlerActor(runHandler),
      remoteStep: createRemoteStepMachine(clock),
      transaction: createTransactionMachine(clock),
    },
  });
}

/** The XState machine of a saga definition. */
export type SagaMachine = ReturnType<ReturnType<typeof machineSetup>['createMachine']>;
/** A running execution of a saga machine. */
export type SagaActor = Actor<SagaMachine>;
/** A snapshot of a saga actor. */
export type SagaSnapshot = ReturnType<SagaActor['getSnapshot']>;

/** A compiled saga: its machine, the map from steps to states that readers need, and what the runtime runs it with. */
export interface CompiledSaga {
  readonly saga: Saga<object>;
  readonly machine: SagaMachine;
  readonly steps: readonly CompiledStep[];
  /** Every step, nested ones included, by path. */
  readonly index: ReadonlyMap<string, CompiledStep>;
  /** Runs the definition's handlers: what the machine's `handler` actor runs, for the runtime to run itself. */
  readonly runHandler: HandlerRunner;
  /** The transition table of `machine` (built on first use), which the runtime runs executions on. */
  readonly table: StateTable;
}

function indexSteps(steps: readonly CompiledStep[], into: Map<string, CompiledStep>): Map<string, CompiledStep> {
  for (const step of steps) {
    into.set(step.path, step);
    for (const branch of step.branches) indexSteps(branch.steps, into);
  }
  return into;
}

/** The events a phase of the two-phase commit passes on to its child. */
const FORWARDED = ['saga.response', 'saga.deadline', 'saga.retry-step'] as const;
/** Those of them an operator sends (they name a part, not a phase). */
const OPERATOR_EVENTS: ReadonlySet<string> = new Set(['saga.retry-step', 'saga.resolve-transaction']);

/**
 * The states of the two-phase commit (minos `TransactionCommitter`): `$commit` asks every service
 * that took part to reserve, then tells them all to commit; `$reject`, where every rollback ends,
 * tells them all to reject. Each phase is a `transaction` child (see `transaction-machine.ts`).
 */
function transactionStates(saga: Saga<object>, a: ReturnType<typeof chartActions>, clock: Clock, lastCompensation: string, ends: Ends) {
  const { twoPhaseCommit, commitTimeoutMs, commitRetryBackoffMs } = saga.options;
  const noTransactions = ({ context }: ActionArgs) => !twoPhaseCommit || context.services.length === 0;
  const phase = (name: TransactionPhase, onDone: unknown) => ({
    invoke: {
      id: transactionChildId(name),
      src: 'transaction',
      input: ({ context }: ActionArgs): TransactionInput => ({
        uuid: context.uuid,
        sagaName: context.sagaName,
        phase: name,
        services: [...context.services],
        timeoutMs: commitTimeoutMs,
        backoffMs: commitRetryBackoffMs,
      }),
      onDone,
    },
    on: Object.fromEntries(
      // Once decided, a service's part can also be resolved by hand (it will never acknowledge).
      ([...FORWARDED, ...(name === 'reserve' ? [] : (['saga.resolve-transaction'] as const))] as const).map((type) => [
        type,
        {
          // An operator's event names a service that took part; the child takes it if that part is not done.
          guard: ({ context, event }: ActionArgs) =>
            OPERATOR_EVENTS.has(type) ? context.services.includes(transactionService(event.step) ?? '') : event.phase === name && isTransactionStep(event.step),
          actions: [
            ...(type === 'saga.retry-step' ? [a.remember('retry-step')] : type === 'saga.resolve-transaction' ? [a.remember('resolve-transaction')] : []),
            sendTo(transactionChildId(name), ({ event }: ActionArgs) => event as never),
          ],
        },
      ]),
    ),
  });
  const output = (args: ActionArgs) => (args.event as unknown as { output: TransactionOutput }).output;
  const recordPhase = assign((args: ActionArgs) => {
    const out = output(args);
    const result = { ok: out.ok, finishedAt: clock.now(), parts: out.parts, ...(out.refusal ? { refusal: out.refusal } : {}) };
    return { transaction: { ...(args.context.transaction ?? {}), [out.phase]: result } };
  });
  const commitFailed = assign((args: ActionArgs) => {
    const refusal = output(args).refusal;
    return { failure: { step: null, code: 'SAGA_COMMIT_FAILED', message: refusal ? refusal.message : 'the reserve of the transaction failed' } };
  });
  const reserve = phase('reserve', [
    { guard: (args: ActionArgs) => output(args).ok, target: 'commit', actions: recordPhase },
    { target: lastCompensation, actions: [recordPhase, commitFailed] },
  ]);
  return {
    '$commit': {
      id: COMMIT_ID,
      initial: 'decide',
      states: {
        decide: { always: [{ guard: noTransactions, target: ends.succeeded }, { target: 'reserve' }] },
        // Nothing is decided yet: an operator may still abort.
        reserve: { tags: ['paused'], invoke: reserve.invoke, on: { ...reserve.on, 'saga.abort': { target: lastCompensation, actions: [a.aborted, a.remember('abort')] } } },
        commit: { tags: ['paused'], ...phase('commit', { target: ends.succeeded, actions: recordPhase }) },
      },
    },
    '$reject': {
      id: REJECT_ID,
      initial: 'decide',
      states: {
        decide: { always: [{ guard: noTransactions, target: ends.failed }, { target: 'reject' }] },
        reject: { tags: ['paused', 'compensating'], ...phase('reject', { target: ends.failed, actions: recordPhase }) },
      },
    },
  };
}

/** Where an execution goes once it has succeeded or its rollback has ended: its saga-level callback, if it has one, then `finished` or `errored`. */
interface Ends {
  succeeded: string;
  failed: string;
}

const ON_SUCCESS_ID = '$on-success';
const ON_FAILURE_ID = '$on-failure';

/**
 * The states of the definition's saga-level callbacks: each runs its handler, keeps the context
 * it leaves, and goes on to the end whatever happens (a failure is recorded in `callbackErrors`).
 */
function callbackStates(saga: Saga<object>, a: ReturnType<typeof chartActions>): Record<string, unknown> {
  const states: Record<string, unknown> = {};
  const failed = (hook: 'onSuccess' | 'onFailure') =>
    assign((args: ActionArgs) => ({ callbackErrors: { ...(args.context.callbackErrors ?? {}), [hook]: a.handlerError(args) } }));
  const state = (hook: 'onSuccess' | 'onFailure', id: string, next: string) => ({
    id,
    invoke: {
      id: `${SAGA_CALLBACK_STEP}:${hook}`,
      src: 'handler',
      input: ({ context }: ActionArgs): HandlerInput => ({
        step: SAGA_CALLBACK_STEP,
        hook,
        data: context.data,
        ...(hook === 'onFailure' && context.failure ? { failure: context.failure } : {}),
      }),
      onDone: [{ guard: notOk, target: next, actions: failed(hook) }, { target: next, actions: a.setData }],
      onError: { target: next, actions: failed(hook) },
    },
  });
  if (saga.callbacks.onSuccess) states[ON_SUCCESS_ID] = state('onSuccess', ON_SUCCESS_ID, `#${FINISHED_ID}`);
  if (saga.callbacks.onFailure) states[ON_FAILURE_ID] = state('onFailure', ON_FAILURE_ID, `#${ERRORED_ID}`);
  return states;
}

function build(saga: Saga<object>, clock: Clock): CompiledSaga {
  const a = chartActions(clock);
  const ends: Ends = {
    succeeded: saga.callbacks.onSuccess ? `#${ON_SUCCESS_ID}` : `#${FINISHED_ID}`,
    failed: saga.callbacks.onFailure ? `#${ON_FAILURE_ID}` : `#${ERRORED_ID}`,
  };
  const list = compileList(
    saga.steps,
    {
      prefix: '',
      statePath: ['running'],
      after: [
        { guard: ({ context }: ActionArgs) => context.autocommit, target: `#${COMMIT_ID}` },
        { target: `#${AWAITING_COMMIT_ID}` },
      ],
      before: `#${REJECT_ID}`,
    },
    a,
  );
  const index = indexSteps(list.compiled, new Map());
  const definitions = new Map([...index].map(([path, step]) => [path, step.definition]));
  const compensable = [...index.values()].filter((s) => s.kind !== 'conditional' && s.compensable);
  const failedCompensation = (path: string) => ({ context, event }: ActionArgs) => event.step === path && compensationFailed(context.steps[path]);
  const config = {
    id: saga.id,
    initial: 'created',
    context: ({ input }: { input: SagaMachineInput }): SagaMachineContext => ({
      uuid: input.uuid,
      sagaName: saga.name,
      data: input.data ?? {},
      autocommit: input.autocommit ?? true,
      steps: {},
      failure: null,
      services: [],
      createdAt: clock.now(),
      startedAt: null,
      finishedAt: null,
      retrying: null,
      history: [],
      transaction: {},
      ...(input.user ? { user: input.user } : {}),
    }),
    states: {
      created: { on: { 'saga.start': { target: 'running', actions: a.stamp('startedAt') } } },
      running: {
        initial: saga.steps[0]!.name,
        states: {
          ...list.states,
          ...transactionStates(saga, a, clock, list.lastCompensation, ends),
          ...callbackStates(saga, a),
          'awaiting-commit': {
            id: AWAITING_COMMIT_ID,
            tags: ['paused'],
            on: {
              'saga.commit': { target: `#${COMMIT_ID}`, actions: a.remember('commit') },
              'saga.reject': {
                target: list.lastCompensation,
                actions: [assign({ failure: { step: null, code: 'SAGA_REJECTED', message: 'the execution was rejected before commit; its steps were compensated' } }), a.remember('reject')],
              },
              'saga.rollback': {
                target: list.lastCompensation,
                actions: [assign({ failure: { step: null, code: 'SAGA_REJECTED', message: 'the execution was rolled back before commit; its steps were compensated' } }), a.remember('rollback')],
              },
              'saga.abort': { target: list.lastCompensation, actions: [a.aborted, a.remember('abort')] },
            },
          },
        },
      },
      finished: { id: FINISHED_ID, type: 'final', entry: a.stamp('finishedAt') },
      errored: {
        id: ERRORED_ID,
        entry: a.stamp('finishedAt'),
        on: {
          'saga.retry-compensation': compensable.map((s) => ({
            guard: failedCompensation(s.path),
            target: `#${s.path}.running-on-failure`,
            actions: [assign({ retrying: s.path }), a.remember('retry-compensation')],
          })),
          'saga.resolve-compensation': compensable.map((s) => ({
            guard: failedCompensation(s.path),
            actions: [a.record(s.path, ({ context }) => ({ compensation: { ...context.steps[s.path]!.compensation!, resolved: true } })), a.remember('resolve-compensation')],
          })),
        },
      },
    },
  };
  const runHandler = handlerRunner(definitions, saga.callbacks);
  const machine = machineSetup(runHandler, clock).createMachine(config as never) as unknown as SagaMachine;
  let table: StateTable | undefined;
  return {
    saga,
    machine,
    steps: list.compiled,
    index,
    runHandler,
    get table() {
      return (table ??= StateTable.of(machine));
    },
  };
}

const cache = new WeakMap<Saga<object>, WeakMap<Clock, CompiledSaga>>();

/**
 * Compiles a committed saga, once per definition and clock: its machine, its step index, its
 * handler runner and its transition table. What `compileSaga` returns is the machine of this.
 */
export function compileDefinition<T extends object>(saga: Saga<T>, options: { clock?: Clock } = {}): CompiledSaga {
  const def = saga as unknown as Saga<object>;
  if (!def.committed) throw new SagaNotCommittedError(def.name);
  const clock = options.clock ?? systemClock;
  let byClock = cache.get(def);
  if (!byClock) cache.set(def, (byClock = new WeakMap()));
  let compiled = byClock.get(clock);
  if (!compiled) byClock.set(clock, (compiled = build(def, clock)));
  return compiled;
}

/**
 * Compiles a committed saga into its XState v5 machine (id `name@hash`), once per definition and
 * clock. States mirror `SagaStatus` at the top and `SagaStepStatus` inside each step; step
 * states have the step names as ids; handlers are invoked actors and remote steps child machines
 * with string `src` and deterministic ids, so snapshots restore in any process.
 *
 * @example
 * ```ts
 * const machine = compileSaga(CREATE_ORDER);
 * console.log(machine.id); // 'create-order@3f2a9c1b7d4e'
 * const actor = createActor(machine, { input: { uuid: 'u1', data: { items: ['book'] } } }).start();
 * ```
 */
export function compileSaga<T extends object>(saga: Saga<T>, options: { clock?: Clock } = {}): SagaMachine {
  return compileDefinition(saga, options).machine;
}

/**
 * Re-delivers the done event of every child that finished before its parent handled it. When a
 * reply forwarded to a remote-step child ends it, the parent emits a snapshot with the child
 * `done` and its done event still queued; XState restores done children without re-sending that
 * event, so without this the restored execution would wait for ever. Every `onDone` of the chart
 * leaves the invoking state, so a done child still present was never handled.
 */
export function redeliverFinishedChildren(actor: SagaActor): void {
  for (const [id, child] of Object.entries(actor.getSnapshot().children)) {
    const snapshot = (child as { getSnapshot(): { status: string; output?: unknown } } | undefined)?.getSnapshot();
    if (snapshot?.status === 'done') actor.send({ type: `xstate.done.actor.${id}`, output: snapshot.output, actorId: id } as never);
  }
}

/** Options of {@link createSagaActor}. */
export interface SagaActorOptions {
  /** Execution id; a random one by default. */
  uuid?: string;
  /** Initial data of the context. */
  context?: Record<string, unknown>;
  /** @defaultValue true */
  autocommit?: boolean;
  clock?: Clock;
  /** Inspection observer, e.g. from `@statelyai/inspect`. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** A persisted snapshot to restore instead of starting anew. */
  snapshot?: Snapshot<unknown>;
}

/**
 * A plain XState actor of a saga, for users who drive executions themselves: start it, send
 * `{ type: 'saga.start' }`, answer the requests that `pendingWork(actor.getSnapshot())` lists
 * with `saga.response` events, and persist `actor.getPersistedSnapshot()` as you like.
 *
 * @example
 * ```ts
 * const actor = createSagaActor(CREATE_ORDER, { context: { items: ['a'] } }).start();
 * actor.send({ type: 'saga.start' });
 * ```
 */
export function createSagaActor<T extends object>(saga: Saga<T>, options: SagaActorOptions = {}): SagaActor {
  const machine = compileSaga(saga, { clock: options.clock ?? systemClock });
  const actorOptions: ActorOptions<SagaMachine> = {
    input: {
      uuid: options.uuid ?? globalThis.crypto.randomUUID(),
      data: (options.context ?? {}) as SagaMachineInput['data'],
      autocommit: options.autocommit ?? true,
    },
    ...(options.inspect ? { inspect: options.inspect } : {}),
    ...(options.snapshot ? { snapshot: options.snapshot } : {}),
  };
  const actor = createActor(machine, actorOptions);
  if (options.snapshot) {
    const start = actor.start.bind(actor);
    actor.start = () => {
      start();
      redeliverFinishedChildren(actor);
      return actor;
    };
  }
  return actor;
}
