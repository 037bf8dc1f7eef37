import { SagaChartUnsupportedError } from '../../src/errors/saga-chart-unsupported-error.js';
import { isChartMachine, type ChartMachine, type ChartNode } from './chart-nodes.js';
import { Planner, type ChartArgs, type Leaf, type Op, type Plan, type TaskLogic } from './plan.js';
import type { Child, Deferred, PersistedMachineSnapshot, TableEffect, TableEvent, TableObserver, TableState, TaskChild } from './table-state.js';

export type { PersistedMachineSnapshot, TableEffect, TableEvent, TableObserver, TableState } from './table-state.js';

const MAX_MICROSTEPS = 10_000;
const refuseSpawn = (): never => {
  throw new Error('spawn is not supported by the transition table');
};
const doneActorEvent = (id: string, output: unknown): TableEvent => ({ type: `xstate.done.actor.${id}`, output, actorId: id });
const errorActorEvent = (id: string, error: unknown): TableEvent => ({ type: `xstate.error.actor.${id}`, error, actorId: id });

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const tables = new WeakMap<object, StateTable>();

/**
 * A transition table compiled from an XState v5 machine's state nodes, once per machine: for
 * each atomic state and event, the guards and the exit, transition and entry actions in XState's
 * order, the target state, its value and tags; invoked child machines run on their own tables.
 * It runs the chart's own action and guard implementations, so the semantics stay in the chart,
 * and reads and writes XState's persisted snapshots, so an XState actor can take over any
 * snapshot it writes and the other way round.
 *
 * A step is pure apart from the chart's actions: it returns effects (tasks to run, what the chart
 * declared with `effectAction`, children stopped) rather than doing them. It implements only the
 * subset sagachart's compiler emits and refuses anything else when it is built
 * (`SagaChartUnsupportedError`).
 *
 * @example
 * ```ts
 * const table = StateTable.of(machine);
 * const { state, effects } = table.start({ uuid, data });
 * const more = table.send(state, { type: 'saga.start' });
 * const snapshot = table.persist(state); // createActor(machine, { snapshot }) carries on from here
 * ```
 */
export class StateTable {
  readonly machine: ChartMachine;
  readonly #leaves: ReadonlyMap<ChartNode, Leaf<StateTable>>;
  readonly #initial: Plan<StateTable>;
  readonly #children = new Map<string, { kind: 'machine'; table: StateTable } | { kind: 'task'; logic: TaskLogic }>();
  readonly #rootPaths = new Map<string, readonly string[]>();

  /** The table of `machine`, built on first use and kept with the machine. */
  static of(machine: object): StateTable {
    let table = tables.get(machine);
    if (!table) {
      if (!isChartMachine(machine)) throw new TypeError('StateTable.of() takes an XState machine (createMachine / setup().createMachine).');
      table = new StateTable(machine);
      tables.set(machine, table);
    }
    return table;
  }

  private constructor(machine: ChartMachine) {
    this.machine = machine;
    const planner = new Planner<StateTable>(machine, (src, node) => this.#childLogic(src, node));
    this.#leaves = planner.build();
    for (const leaf of this.#leaves.values()) deepFreeze(leaf.value);
    this.#initial = planner.initialPlan();
  }

  #childLogic(src: string, node: ChartNode): { kind: 'machine'; table: StateTable } | { kind: 'task'; logic: TaskLogic } {
    let child = this.#children.get(src);
    if (child) return child;
    const logic = this.machine.implementations.actors[src];
    if (isChartMachine(logic)) child = { kind: 'machine', table: StateTable.of(logic) };
    else if (logic && typeof (logic as TaskLogic).getInitialSnapshot === 'function' && typeof (logic as TaskLogic).getPersistedSnapshot === 'function') child = { kind: 'task', logic: logic as TaskLogic };
    else throw new SagaChartUnsupportedError(node.id, `an invoke of "${src}", which is not in setup({ actors })`);
    this.#children.set(src, child);
    return child;
  }

  // ----- stepping ------------------------------------------------------------------------------

  /** XState's initial snapshot and start: the initial macrostep, then the children it invoked start. */
  start(input: unknown, observer?: TableObserver): { state: TableState; effects: TableEffect[] } {
    const effects: TableEffect[] = [];
    const deferred: Deferred[] = [];
    const event: TableEvent = { type: 'xstate.init', input };
    const state = this.#initialState(input, event, effects, deferred, []);
    observer?.event(state, event);
    observer?.snapshot(state, event);
    this.#flush(state, deferred, effects, [], observer);
    return { state, effects };
  }

  /** One external event: the macrostep it causes, and the events that follow from it inside the execution. */
  send(state: TableState, event: TableEvent, observer?: TableObserver): TableEffect[] {
    const effects: TableEffect[] = [];
    this.#deliver(state, event, effects, [], observer);
    return effects;
  }

  /** Reports that the task at `path` finished with `output`: its done event is delivered. */
  resolveTask(state: TableState, path: readonly string[], output: unknown, observer?: TableObserver): TableEffect[] {
    return this.#settleTask(state, path, observer, true, output);
  }

  /** Reports that the task at `path` failed with `error`: its error event is delivered. */
  rejectTask(state: TableState, path: readonly string[], error: unknown, observer?: TableObserver): TableEffect[] {
    return this.#settleTask(state, path, observer, false, error);
  }

  /** Whether `event` would be taken now (XState's `snapshot.can`). */
  can(state: TableState, event: TableEvent): boolean {
    if (state.status !== 'active') return false;
    const candidates = state.leaf.on.get(event.type);
    if (!candidates) return false;
    const args: ChartArgs = { context: state.context, event };
    for (const c of candidates) if (!c.guard || c.guard(args, undefined)) return c.acts;
    return false;
  }

  #settleTask(state: TableState, path: readonly string[], observer: TableObserver | undefined, done: boolean, outcome: unknown): TableEffect[] {
    const effects: TableEffect[] = [];
    const id = path[path.length - 1];
    // Tasks of the machine itself, the usual case, need no walk down the children.
    const owners = path.length === 1 ? [{ table: this as StateTable, state, path: [] as string[] }] : this.#owners(state, path.slice(0, -1));
    const owner = owners[owners.length - 1];
    const child = id === undefined || !owner ? undefined : owner.state.children.get(id);
    // A task stopped before it settled is ignored, as XState ignores a stopped actor.
    if (!owner || !child || child.kind !== 'task' || child.snapshot.status !== 'active') return effects;
    // The task's snapshot is the table's own object (never handed out while active): it moves on in place.
    const snapshot = child.snapshot;
    snapshot.status = done ? 'done' : 'error';
    if (done) snapshot.output = outcome;
    else snapshot.error = outcome;
    snapshot.input = undefined;
    const event = done ? doneActorEvent(id!, outcome) : errorActorEvent(id!, outcome);
    owner.table.#deliver(owner.state, event, effects, owner.path, owners.length === 1 ? observer : undefined);
    if (owners.length > 1) this.#bubble(owners, effects, observer);
    return effects;
  }

  /** The machines from the root down to `path`, each with its table and path. */
  #owners(state: TableState, path: readonly string[]): Array<{ table: StateTable; state: TableState; path: string[] }> {
    const out: Array<{ table: StateTable; state: TableState; path: string[] }> = [{ table: this, state, path: [] }];
    for (let i = 0; i < path.length; i++) {
      const child = out[i]!.state.children.get(path[i]!);
      if (!child || child.kind !== 'machine') return [];
      out.push({ table: child.table, state: child.state, path: path.slice(0, i + 1) });
    }
    return out;
  }

  /** A child machine that ended after a task's outcome tells its parent, up to the root. */
  #bubble(owners: Array<{ table: StateTable; state: TableState; path: string[] }>, effects: TableEffect[], observer: TableObserver | undefined): void {
    for (let i = owners.length - 1; i > 0; i--) {
      const { state, path } = owners[i]!;
      if (state.status !== 'done') return;
      const parent = owners[i - 1]!;
      parent.table.#deliver(parent.state, doneActorEvent(path[path.length - 1]!, state.output), effects, parent.path, i === 1 ? observer : undefined);
    }
  }

  #initialState(input: unknown, event: TableEvent, effects: TableEffect[], deferred: Deferred[], path: readonly string[]): TableState {
    const make = this.machine.config.context;
    const context = typeof make === 'function' ? (make as (a: unknown) => unknown)({ input, spawn: refuseSpawn, self: undefined }) : (make ?? {});
    const state: TableState = { leaf: this.#initial.to, status: 'active', context, children: new Map(), output: undefined };
    this.#run(state, this.#initial, event, effects, deferred, path);
    this.#eventless(state, event, effects, deferred, path);
    if (state.status === 'done') this.#stopChildren(state, effects, path);
    return state;
  }

  /** An event into one machine's mailbox, and what it causes there until the mailbox is empty. */
  #deliver(state: TableState, first: TableEvent, effects: TableEffect[], path: readonly string[], observer: TableObserver | undefined): void {
    const mailbox: TableEvent[] = [first];
    for (let event = mailbox.shift(); event && state.status === 'active'; event = mailbox.shift()) {
      const deferred: Deferred[] = [];
      observer?.event(state, event);
      this.#macrostep(state, event, effects, deferred, path);
      observer?.snapshot(state, event);
      this.#flush(state, deferred, effects, path, observer, mailbox);
    }
  }

  #macrostep(state: TableState, event: TableEvent, effects: TableEffect[], deferred: Deferred[], path: readonly string[]): void {
    const candidates = state.leaf.on.get(event.type);
    if (candidates) {
      const args: ChartArgs = { context: state.context, event };
      for (const c of candidates) {
        if (!c.guard || this.#guard(c.guard, args, state, event)) {
          this.#run(state, c.plan, event, effects, deferred, path);
          break;
        }
      }
    } else if (event.type.startsWith('xstate.error.actor.')) {
      // XState puts an actor whose child error nobody handles in status 'error'.
      throw new Error(`${this.machine.id}: the error of child ${String(event['actorId'])} is not handled in state ${state.leaf.node.id}: ${String(event['error'])}`);
    }
    this.#eventless(state, event, effects, deferred, path);
    if (state.status === 'done') this.#stopChildren(state, effects, path);
  }

  #eventless(state: TableState, event: TableEvent, effects: TableEffect[], deferred: Deferred[], path: readonly string[]): void {
    for (let n = 0; state.status === 'active'; n++) {
      if (n > MAX_MICROSTEPS) throw new Error(`${this.machine.id}: more than ${MAX_MICROSTEPS} eventless transitions in a row at ${state.leaf.node.id}`);
      const always = state.leaf.always;
      if (!always.length) return;
      const args: ChartArgs = { context: state.context, event };
      let taken: (typeof always)[number] | undefined;
      for (const c of always) {
        if (!c.guard || this.#guard(c.guard, args, state, event)) {
          taken = c;
          break;
        }
      }
      if (!taken) return;
      this.#run(state, taken.plan, event, effects, deferred, path);
    }
  }

  #guard(guard: (args: ChartArgs, params: undefined) => boolean, args: ChartArgs, state: TableState, event: TableEvent): boolean {
    try {
      return guard(args, undefined);
    } catch (err) {
      throw new Error(`Unable to evaluate guard in transition for event '${event.type}' in state node '${state.leaf.node.id}':\n${(err as Error).message}`, { cause: err });
    }
  }

  /** Deferred work of a macrostep, in order: events to children, children started. */
  #flush(state: TableState, deferred: Deferred[], effects: TableEffect[], path: readonly string[], observer: TableObserver | undefined, mailbox?: TableEvent[]): void {
    for (const d of deferred) {
      const child = state.children.get(d.kind === 'send' ? d.to : d.id);
      if (!child) continue; // stopped before its turn: XState drops the work too
      const childPath = this.#childPath(path, d.kind === 'send' ? d.to : d.id);
      if (child.kind === 'task') {
        if (d.kind === 'start') effects.push({ type: 'task', path: childPath, src: child.src, input: child.input });
        continue;
      }
      if (child.state.status !== 'active') continue;
      if (d.kind === 'send') child.table.#deliver(child.state, d.event, effects, childPath, undefined);
      else if (child.pending) {
        const { effects: early, deferred: later } = child.pending;
        child.pending = null;
        effects.push(...early);
        child.table.#flush(child.state, later, effects, childPath, undefined);
      }
      if ((child.state.status as TableState['status']) === 'done') {
        const done = doneActorEvent(childPath[childPath.length - 1]!, child.state.output);
        if (mailbox) mailbox.push(done);
        else this.#deliver(state, done, effects, path, observer);
      }
    }
  }

  /**
   * Runs a plan's operations. Like XState, every assign yields a new context object, so a context
   * seen before (in a persisted snapshot, a view) never changes; unlike XState, the assigns of one
   * transition share one new object: the first copies, the next ones write into that copy.
   */
  #run(state: TableState, plan: Plan<StateTable>, event: TableEvent, effects: TableEffect[], deferred: Deferred[], path: readonly string[]): void {
    let fresh: object | null = null;
    for (const op of plan.ops) {
      if (op.op === 'assign' || op.op === 'assignProps') {
        const partial = this.#partial(op, state.context, event);
        if (fresh !== null && state.context === fresh) Object.assign(fresh, partial);
        else state.context = fresh = Object.assign({}, state.context, partial);
      } else this.#op(state, op, event, effects, deferred, path);
    }
    state.leaf = plan.to;
  }

  #partial(op: Extract<Op<StateTable>, { op: 'assign' | 'assignProps' }>, context: unknown, event: TableEvent): Record<string, unknown> | undefined {
    const args: ChartArgs = { context, event, spawn: refuseSpawn, self: undefined, system: undefined };
    if (op.op === 'assign') return op.assignment(args, undefined);
    const partial: Record<string, unknown> = {};
    for (const [key, value] of op.props) partial[key] = typeof value === 'function' ? (value as (a: ChartArgs, p: undefined) => unknown)(args, undefined) : value;
    return partial;
  }

  #op(state: TableState, op: Op<StateTable>, event: TableEvent, effects: TableEffect[], deferred: Deferred[], path: readonly string[]): void {
    switch (op.op) {
      case 'assign':
      case 'assignProps':
        state.context = Object.assign({}, state.context, this.#partial(op, state.context, event));
        return;
      case 'sendTo': {
        if (!state.children.has(op.to)) throw new Error(`Unable to send event to actor '${op.to}' from machine '${this.machine.id}'.`);
        const sent = typeof op.event === 'function' ? (op.event as (a: ChartArgs, p: undefined) => TableEvent)({ context: state.context, event }, undefined) : (op.event as TableEvent);
        deferred.push({ kind: 'send', to: op.to, event: sent });
        return;
      }
      case 'effect':
        effects.push({ type: 'effect', path, effect: op.make({ context: state.context, event }) });
        return;
      case 'spawn': {
        const input = typeof op.input === 'function' ? (op.input as (a: unknown) => unknown)({ context: state.context, event, self: undefined }) : op.input;
        if (op.child.kind === 'task') {
          state.children.set(op.id, { kind: 'task', src: op.src, logic: op.child.logic, input, snapshot: op.child.logic.getInitialSnapshot(undefined, input) as TaskChild['snapshot'] });
        } else {
          const early: TableEffect[] = [];
          const later: Deferred[] = [];
          const childState = op.child.table.#initialState(input, { type: 'xstate.init', input }, early, later, this.#childPath(path, op.id));
          state.children.set(op.id, { kind: 'machine', src: op.src, table: op.child.table, state: childState, pending: { effects: early, deferred: later } });
        }
        deferred.push({ kind: 'start', id: op.id });
        return;
      }
      case 'stop':
        if (state.children.delete(op.id)) {
          effects.push({ type: 'stopped', path: this.#childPath(path, op.id) });
        }
        return;
      case 'done': {
        state.status = 'done';
        const output = this.machine.root.output;
        state.output =
          typeof output === 'function'
            ? (output as (a: unknown) => unknown)({ context: state.context, event: { type: `xstate.done.state.${this.machine.root.id}`, output: undefined }, self: undefined })
            : output;
        return;
      }
    }
  }

  /** The path of child `id` below `path`; the machine's own children's paths are made once (they are frozen). */
  #childPath(path: readonly string[], id: string): readonly string[] {
    if (path.length) return [...path, id];
    let cached = this.#rootPaths.get(id);
    if (!cached) this.#rootPaths.set(id, (cached = Object.freeze([id])));
    return cached;
  }

  #stopChildren(state: TableState, effects: TableEffect[], path: readonly string[]): void {
    for (const id of [...state.children.keys()]) {
      state.children.delete(id);
      effects.push({ type: 'stopped', path: this.#childPath(path, id) });
    }
  }

  // ----- snapshots -----------------------------------------------------------------------------

  /** XState's persisted snapshot of `state` (deep-equal to `actor.getPersistedSnapshot()`), sharing its values. */
  persist(state: TableState): PersistedMachineSnapshot {
    const children: PersistedMachineSnapshot['children'] = {};
    for (const [id, child] of state.children) {
      children[id] = {
        // A task's snapshot is copied: the table moves it on in place when the task settles.
        snapshot: child.kind === 'machine' ? child.table.persist(child.state) : { ...(child.logic.getPersistedSnapshot(child.snapshot) as object) },
        src: child.src,
        systemId: undefined,
        syncSnapshot: false,
      };
    }
    return { status: state.status, output: state.output, error: undefined, value: state.leaf.value, historyValue: {}, context: state.context, children };
  }

  /**
   * A live state from a persisted snapshot (the table's or an XState actor's), and what starting
   * it asks for: tasks that were running are run again (as XState restarts promise actors), and a
   * child that had finished before its parent heard of it reports now (XState would wait for ever).
   * Throws a `RangeError` naming what does not fit this machine.
   */
  restore(persisted: unknown, observer?: TableObserver): { state: TableState; effects: TableEffect[] } {
    const state = this.#restoreState(persisted, 'snapshot');
    const effects: TableEffect[] = [];
    this.#resume(state, effects, [], observer);
    return { state, effects };
  }

  #restoreState(persisted: unknown, where: string): TableState {
    if (typeof persisted !== 'object' || persisted === null) throw new RangeError(`${where} is not an object`);
    const p = persisted as Partial<PersistedMachineSnapshot>;
    if (p.status !== 'active' && p.status !== 'done') throw new RangeError(`${where}.status is ${JSON.stringify(p.status)}, not "active" or "done"`);
    if (typeof p.context !== 'object' || p.context === null) throw new RangeError(`${where}.context is not an object`);
    const leaf = this.leafOf(p.value);
    if (!leaf) throw new RangeError(`${where}.value ${JSON.stringify(p.value)} is not a state of ${this.machine.id}`);
    const children = new Map<string, Child>();
    const stored = p.children ?? {};
    if (typeof stored !== 'object' || stored === null) throw new RangeError(`${where}.children is not an object`);
    for (const [id, entry] of Object.entries(stored)) {
      const src = (entry as { src?: unknown } | null)?.src;
      const child = typeof src === 'string' ? this.#children.get(src) : undefined;
      if (!child) throw new RangeError(`${where}.children.${id} has src ${JSON.stringify(src)}, which ${this.machine.id} does not invoke`);
      const snapshot = (entry as { snapshot?: unknown }).snapshot;
      if (child.kind === 'machine') {
        children.set(id, { kind: 'machine', src: src as string, table: child.table, state: child.table.#restoreState(snapshot, `${where}.children.${id}.snapshot`), pending: null });
      } else {
        const s = snapshot as TaskChild['snapshot'] | null;
        if (typeof s !== 'object' || s === null || typeof s.status !== 'string') throw new RangeError(`${where}.children.${id}.snapshot has no status`);
        children.set(id, { kind: 'task', src: src as string, logic: child.logic, input: s.input, snapshot: s });
      }
    }
    return { leaf, status: p.status, context: p.context, children, output: p.output };
  }

  #resume(state: TableState, effects: TableEffect[], path: readonly string[], observer: TableObserver | undefined): void {
    for (const [id, child] of [...state.children]) {
      const childPath = this.#childPath(path, id);
      if (child.kind === 'task') {
        if (child.snapshot.status === 'active') effects.push({ type: 'task', path: childPath, src: child.src, input: child.input });
        else if (child.snapshot.status === 'done') this.#deliver(state, doneActorEvent(id, child.snapshot.output), effects, path, observer);
        continue;
      }
      child.table.#resume(child.state, effects, childPath, undefined);
      if (child.state.status === 'done') this.#deliver(state, doneActorEvent(id, child.state.output), effects, path, observer);
    }
  }

  /** The atomic state of a state value, or `undefined` when the value is not one of this machine. */
  leafOf(value: unknown): Leaf<StateTable> | undefined {
    let node: ChartNode | undefined = this.machine.root;
    let v: unknown = value;
    const child = (n: ChartNode, key: string): ChartNode | undefined => (Object.hasOwn(n.states, key) ? n.states[key] : undefined);
    while (node) {
      if (typeof v === 'string') {
        const found = child(node, v);
        return found ? this.#leaves.get(found) : undefined;
      }
      if (typeof v !== 'object' || v === null) return undefined;
      const keys = Object.keys(v);
      if (keys.length !== 1) return undefined;
      node = child(node, keys[0]!);
      v = (v as Record<string, unknown>)[keys[0]!];
    }
    return undefined;
  }

  /** The tags of the state a value names (XState's `snapshot.hasTag`), without restoring anything. */
  tagsOf(value: unknown): ReadonlySet<string> {
    return this.leafOf(value)?.tags ?? new Set();
  }
}
