/**
 * Two engines driving one compiled saga chart with the same events: a real XState actor, and the
 * transition table the runtime runs on. Each is driven to rest after every event (handlers run,
 * sync or async), and exposes what the differential test compares: the persisted snapshot, the
 * requests and deadlines it waits on, and the execution view.
 */
import { createActor } from 'xstate';
import { compileDefinition, redeliverFinishedChildren, type CompiledSaga, type SagaActor } from '../../machines/compile.js';
import { chartEffects, waitOwner } from '../../machines/effects.js';
import { pendingWork } from '../../machines/read.js';
import type { StateTable, TableEffect, TableState } from '../../machines/table/state-table.js';
import type { HandlerInput, HandlerOutput, SagaMachineEvent } from '../../machines/types.js';
import { SagaExecution } from '../../src/runtime/saga-execution.js';
import type { Clock, OutgoingRequest, Saga, SagaTimer } from '../../src/index.js';

/** The JSON round trip a repository applies: what is compared. */
export const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export interface ChartEngine {
  readonly name: string;
  send(event: SagaMachineEvent): Promise<void>;
  persisted(): unknown;
  requests(): OutgoingRequest[];
  timers(): SagaTimer[];
  view(): ReturnType<SagaExecution['toJSON']>;
  /** Whether the chart would take the event now. */
  can(event: SagaMachineEvent): boolean;
}

const byTimer = (a: SagaTimer, b: SagaTimer) => a.at - b.at || (a.event.step < b.event.step ? -1 : a.event.step > b.event.step ? 1 : 0);
const byRequestId = (a: OutgoingRequest, b: OutgoingRequest) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0);

/** The chart run by an XState actor (what `createSagaActor` gives users). */
export class ActorEngine implements ChartEngine {
  readonly name = 'xstate';
  readonly #compiled: CompiledSaga;
  readonly #actor: SagaActor;

  constructor(compiled: CompiledSaga, from: { input: { uuid: string; data: Record<string, unknown>; autocommit?: boolean } } | { snapshot: unknown }) {
    this.#compiled = compiled;
    this.#actor = createActor(compiled.machine, 'snapshot' in from ? { snapshot: from.snapshot as never } : { input: from.input as never });
    this.#actor.start();
    if ('snapshot' in from) redeliverFinishedChildren(this.#actor);
  }

  static async at(compiled: CompiledSaga, from: ConstructorParameters<typeof ActorEngine>[1]): Promise<ActorEngine> {
    const engine = new ActorEngine(compiled, from);
    await engine.#rest();
    return engine;
  }

  async send(event: SagaMachineEvent): Promise<void> {
    this.#actor.send(event);
    await this.#rest();
  }

  /** Waits until no handler actor is running (async handlers settle on later ticks). */
  async #rest(): Promise<void> {
    for (let i = 0; i < 1_000; i++) {
      const snapshot = this.#actor.getSnapshot();
      if (snapshot.status === 'error') throw new Error(`the XState actor failed: ${String(snapshot.error)}`);
      const busy = Object.values(snapshot.children).some((c) => (c as { src?: unknown } | undefined)?.src === 'handler');
      if (!busy) return;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('the XState actor did not come to rest');
  }

  persisted(): unknown {
    return json(this.#actor.getPersistedSnapshot());
  }

  requests(): OutgoingRequest[] {
    return pendingWork(this.#actor.getSnapshot()).requests.sort(byRequestId);
  }

  timers(): SagaTimer[] {
    return pendingWork(this.#actor.getSnapshot()).timers.sort(byTimer);
  }

  view() {
    return new SagaExecution(this.#compiled, this.#actor.getSnapshot()).toJSON();
  }

  can(event: SagaMachineEvent): boolean {
    return this.#actor.getSnapshot().can(event);
  }
}

/** What an execution waits on, by wait key. */
type Waits = Map<string, { request?: OutgoingRequest; timer?: SagaTimer | null }>;

/**
 * The chart run on its transition table, the way the runtime does: tasks run through the
 * definition's handler runner, and what it waits on is kept from the chart's effects alone.
 */
export class TableEngine implements ChartEngine {
  readonly name = 'table';
  readonly #compiled: CompiledSaga;
  readonly #table: StateTable;
  readonly #state: TableState;
  /** What the execution waits on, by wait key: built from effects only, never read off the state. */
  readonly #waits: Waits;

  private constructor(compiled: CompiledSaga, state: TableState, waits: Waits) {
    this.#compiled = compiled;
    this.#table = compiled.table;
    this.#state = state;
    this.#waits = waits;
  }

  static async start(compiled: CompiledSaga, input: { uuid: string; data: Record<string, unknown>; autocommit?: boolean }): Promise<TableEngine> {
    const { state, effects } = compiled.table.start(input);
    const engine = new TableEngine(compiled, state, new Map());
    await engine.#drain(effects);
    return engine;
  }

  /** Restored from a persisted snapshot; `waits` is what a stored record's outbox and timer say. */
  static async restore(compiled: CompiledSaga, snapshot: unknown, waits: { requests: OutgoingRequest[]; timers: SagaTimer[] }): Promise<TableEngine> {
    const { state, effects } = compiled.table.restore(json(snapshot));
    const map: Waits = new Map();
    for (const r of waits.requests) map.set(`${r.step}:${r.phase}`, { request: r });
    for (const t of waits.timers) map.set(`${t.event.step}:${t.event.phase}`, { ...map.get(`${t.event.step}:${t.event.phase}`), timer: t });
    const engine = new TableEngine(compiled, state, map);
    await engine.#drain(effects);
    return engine;
  }

  async send(event: SagaMachineEvent): Promise<void> {
    await this.#drain(this.#table.send(this.#state, event as never));
  }

  async #drain(first: TableEffect[]): Promise<void> {
    let queue = first;
    while (queue.length) {
      const next: TableEffect[] = [];
      for (const effect of queue) {
        if (effect.type === 'task') {
          let output: HandlerOutput = this.#compiled.runHandler(effect.input as HandlerInput) as HandlerOutput;
          if ((output as unknown) instanceof Promise) output = await (output as unknown as Promise<HandlerOutput>);
          next.push(...this.#table.resolveTask(this.#state, effect.path, output));
        } else if (effect.type === 'stopped') {
          const child = effect.path[effect.path.length - 1]!;
          for (const key of [...this.#waits.keys()]) if (waitOwner(key) === child) this.#waits.delete(key);
        } else {
          for (const e of chartEffects(effect.effect)) {
            if (e.kind === 'settled') this.#waits.delete(e.key);
            else if (e.kind === 'request') this.#waits.set(e.key, { ...this.#waits.get(e.key), request: e.request });
            else this.#waits.set(e.key, { ...this.#waits.get(e.key), timer: e.timer });
          }
        }
      }
      queue = next;
    }
  }

  persisted(): unknown {
    return json(this.#table.persist(this.#state));
  }

  requests(): OutgoingRequest[] {
    return [...this.#waits.values()].flatMap((w) => (w.request ? [w.request] : [])).sort(byRequestId);
  }

  timers(): SagaTimer[] {
    return [...this.#waits.values()].flatMap((w) => (w.timer ? [w.timer] : [])).sort(byTimer);
  }

  view() {
    const state = this.#state;
    return new SagaExecution(this.#compiled, { value: state.leaf.value, context: state.context as never, hasTag: (t) => state.leaf.tags.has(t) }).toJSON();
  }

  can(event: SagaMachineEvent): boolean {
    return this.#table.can(this.#state, event as never);
  }
}

/** The compiled definition both engines run. */
export function definitionOf(saga: Saga<object>, clock: Clock): CompiledSaga {
  return compileDefinition(saga, { clock });
}
