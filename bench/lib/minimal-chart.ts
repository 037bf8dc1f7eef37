// The cheapest statechart of the workload's saga that still shows what a saga orchestrator must
// show: per step running-on-execute, paused-by-on-execute, running-on-success, finished, and the
// compensation states; no manager, outbox, deadlines or validation. Built with or without what
// sagachart's design adds, so bench/chart-cost.ts can price each addition and
// contenders/xstate-floor.ts can put the cheapest one on the wire:
// - handlers "events": whoever drives the actor runs the handler and sends its result as an
//   event; "actors": each handler is a promise actor invoked by its state (DESIGN.md §4);
// - remoteChildren: the wait for a response is a child machine (DESIGN.md §4) or a plain state.
import { assign, createActor, fromPromise, setup, type AnyActorRef, type StateValue } from 'xstate';
import { requestContent, STEPS } from './workload.js';

export type Data = Record<string, unknown>;
interface Request {
  target: string;
  content: unknown;
}
interface Ctx {
  data: Data;
  request: Request | null;
  failed: string | null;
}
interface HandlerResult {
  data: Data;
  request: Request | null;
}
type Ev = { type: 'start' } | ({ type: 'handled' } & HandlerResult) | { type: 'answered'; status: number };

const TARGETS: Record<string, { execute: string; undo?: string }> = {
  reserve: { execute: 'svc.reserve', undo: 'svc.release' },
  charge: { execute: 'svc.charge', undo: 'svc.refund' },
  ship: { execute: 'svc.ship' },
};

/** The workload's handlers: onExecute and onFailure build a request, onSuccess marks the step done. */
export function runHandler(step: string, phase: string, source: Data): HandlerResult {
  // A handler gets its own copy of the data, as sagachart's do.
  const data = JSON.parse(JSON.stringify(source)) as Data;
  if (phase === 'running-on-success') {
    data[step] = 'done';
    return { data, request: null };
  }
  const undo = phase === 'running-on-failure';
  const target = undo ? TARGETS[step]!.undo! : TARGETS[step]!.execute;
  return { data, request: { target, content: requestContent(data.i as number, undo ? `${step}-undo` : step, data.fail as boolean) } };
}

export interface MinimalChartOptions {
  handlers: 'events' | 'actors';
  remoteChildren: boolean;
}

const remoteLogic = setup({ types: { context: {} as { status: number | null }, events: {} as Ev, output: {} as number } }).createMachine({
  context: { status: null },
  initial: 'waiting',
  states: {
    waiting: { on: { answered: { target: 'responded', actions: assign({ status: ({ event }) => (event.type === 'answered' ? event.status : null) }) } } },
    responded: { type: 'final' },
  },
  output: ({ context }) => context.status ?? 500,
});

export function minimalChart(options: MinimalChartOptions) {
  const applyResult = assign(({ event }: { event: { type: string; output?: unknown } & Partial<HandlerResult> }) => {
    const result = (event.type === 'handled' ? event : event.output) as HandlerResult;
    return { data: result.data, request: result.request };
  });
  const statusOf = (event: { type: string; status?: number; output?: unknown }) => (event.type === 'answered' ? event.status : (event.output as number));
  const ok = ({ event }: { event: { type: string; status?: number; output?: unknown } }) => statusOf(event) === 200;

  const handlerState = (step: string, phase: string, target: string, tags: string[] = []) =>
    options.handlers === 'events'
      ? { tags: ['handler', ...tags], on: { handled: { target, actions: applyResult } } }
      : { tags, invoke: { id: `${step}:${phase}`, src: 'handler', input: ({ context }: { context: Ctx }) => ({ step, phase, data: context.data }), onDone: { target, actions: applyResult } } };
  const waitState = (step: string, phase: string, routes: Array<{ guard?: typeof ok; target: string; actions?: unknown }>, tags: string[] = []) =>
    options.remoteChildren
      ? { tags: ['paused', ...tags], invoke: { id: `${step}:${phase}`, src: 'remote', onDone: routes } }
      : { tags: ['paused', ...tags], on: { answered: routes } };

  const stepStates = (name: string, i: number) => {
    const next = STEPS[i + 1] ? `#${STEPS[i + 1]}` : '#finished';
    const previous = STEPS[i - 1];
    const before = previous && TARGETS[previous]!.undo ? `#${previous}.running-on-failure` : '#errored';
    return {
      id: name,
      initial: 'created',
      states: {
        created: { always: 'running-on-execute' },
        'running-on-execute': handlerState(name, 'running-on-execute', 'paused-by-on-execute'),
        'paused-by-on-execute': waitState(name, 'execute', [
          { guard: ok, target: 'running-on-success' },
          { target: 'errored-by-on-execute', actions: assign({ failed: name }) },
        ]),
        'running-on-success': handlerState(name, 'running-on-success', 'finished'),
        'errored-by-on-execute': { always: before },
        finished: { always: next },
        'running-on-failure': handlerState(name, 'running-on-failure', 'paused-on-failure', ['compensating']),
        'paused-on-failure': waitState(name, 'compensate', [{ guard: ok, target: 'compensated' }, { target: 'errored-on-failure' }], ['compensating']),
        compensated: { always: before },
        'errored-on-failure': { always: before },
      },
    };
  };

  return setup({
    types: { context: {} as Ctx, events: {} as Ev, input: {} as { data: Data } },
    actors: {
      handler: fromPromise<HandlerResult, { step: string; phase: string; data: Data }>(async ({ input }) => runHandler(input.step, input.phase, input.data)),
      remote: remoteLogic,
    },
  }).createMachine({
    id: 'minimal-saga',
    context: ({ input }) => ({ data: input.data, request: null, failed: null }),
    initial: 'created',
    states: {
      created: { on: { start: 'running' } },
      running: { initial: STEPS[0], states: Object.fromEntries(STEPS.map((s, i) => [s, stepStates(s, i)])) as never },
      finished: { id: 'finished', type: 'final' },
      errored: { id: 'errored', type: 'final' },
    },
  });
}

export type MinimalChart = ReturnType<typeof minimalChart>;

/** The step the chart is in and its sub-state, read off `{ running: { <step>: <status> } }`. */
function position(value: StateValue): [string, string] {
  const [step, sub] = Object.entries((value as { running: Record<string, string> }).running)[0]!;
  return [step, sub];
}

export interface MinimalIo {
  /** Sends the request and resolves with the participant's status. */
  answer(request: Request): Promise<number>;
  /** Stores the persisted snapshot before the request goes out (optional). */
  store?(persisted: unknown): Promise<void>;
}

/**
 * Runs one saga on a minimal chart: runs handlers (handlers "events"), stores, sends requests and
 * delivers answers (to the waiting child, with remoteChildren). Resolves with how it ended:
 * `finished`, or `compensated` when step `ship` failed and the others were undone.
 */
export function runMinimalSaga(machine: MinimalChart, data: Data, options: MinimalChartOptions, io: MinimalIo): Promise<'finished' | 'compensated' | 'error'> {
  const actor = createActor(machine, { input: { data } });
  return new Promise((resolve, reject) => {
    let waiting = false;
    const react = () => {
      const snapshot = actor.getSnapshot();
      if (snapshot.status === 'done') {
        const failed = snapshot.context.failed;
        resolve(snapshot.value === 'finished' ? 'finished' : failed === 'ship' ? 'compensated' : 'error');
        return;
      }
      if (waiting || typeof snapshot.value === 'string') return;
      const [step, phase] = position(snapshot.value);
      if (options.handlers === 'events' && snapshot.hasTag('handler')) {
        actor.send({ type: 'handled', ...runHandler(step, phase, snapshot.context.data) });
        return;
      }
      if (!snapshot.hasTag('paused')) return;
      waiting = true;
      const request = snapshot.context.request!;
      const persisted = io.store ? actor.getPersistedSnapshot() : null;
      (async () => {
        if (io.store) await io.store(persisted);
        const status = await io.answer(request);
        waiting = false;
        const to: AnyActorRef = options.remoteChildren ? Object.values(actor.getSnapshot().children)[0]! : actor;
        to.send({ type: 'answered', status });
      })().catch(reject);
    };
    actor.subscribe({ next: react, error: reject });
    actor.start();
    actor.send({ type: 'start' });
  }).finally(() => actor.stop()) as Promise<'finished' | 'compensated' | 'error'>;
}
