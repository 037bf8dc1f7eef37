import type { StateValue } from 'xstate';
import { SagaChartUnsupportedError } from '../../src/errors/saga-chart-unsupported-error.js';
import { effectMakerOf, type EffectArgs } from './effect-action.js';
import { isDescendant, properAncestors, type ChartMachine, type ChartNode, type TransitionDefinition } from './chart-nodes.js';

/** What the chart's actions and guards are called with (XState's action and guard arguments). */
export interface ChartArgs {
  context: unknown;
  event: { type: string };
  self?: undefined;
  system?: undefined;
  spawn?: () => never;
}

export type Guard = (args: ChartArgs, params: undefined) => boolean;

/** Invoked logic, resolved when the table is built. */
export type ChildLogic<TTable> = { kind: 'machine'; table: TTable } | { kind: 'task'; logic: TaskLogic };

/** A piece of invoked logic that is not a machine: the runtime runs it (a handler) and reports its outcome. */
export interface TaskLogic {
  getInitialSnapshot(scope: unknown, input: unknown): unknown;
  getPersistedSnapshot(snapshot: unknown): unknown;
}

/** One precomputed operation of a transition, in XState's order. */
export type Op<TTable> =
  | { op: 'assign'; assignment: (args: ChartArgs, params: undefined) => Record<string, unknown> | undefined }
  | { op: 'assignProps'; props: ReadonlyArray<readonly [string, unknown]> }
  | { op: 'sendTo'; to: string; event: unknown }
  | { op: 'effect'; make: (args: EffectArgs<unknown>) => unknown }
  | { op: 'spawn'; id: string; src: string; input: unknown; child: ChildLogic<TTable> }
  | { op: 'stop'; id: string }
  | { op: 'done' };

/** What taking one transition from one atomic state does. */
export interface Plan<TTable> {
  readonly ops: ReadonlyArray<Op<TTable>>;
  readonly to: Leaf<TTable>;
  /** The machine reaches a top-level final state. */
  readonly done: boolean;
}

/** A transition that may be taken from an atomic state: its guard and its plan. */
export interface Candidate<TTable> {
  readonly guard: Guard | undefined;
  readonly plan: Plan<TTable>;
  /** Has a target or actions: what XState's `can()` counts. */
  readonly acts: boolean;
}

/** An atomic (or final) state with everything the table needs to run it, built once. */
export interface Leaf<TTable> {
  readonly node: ChartNode;
  readonly value: StateValue;
  readonly tags: ReadonlySet<string>;
  /** Candidates by event type: the state's own first, then its ancestors', as XState selects them. */
  readonly on: Map<string, ReadonlyArray<Candidate<TTable>>>;
  /** Eventless transitions, the state's own first, then its ancestors'. */
  always: ReadonlyArray<Candidate<TTable>>;
  readonly final: boolean;
}

const describe = (value: unknown): string => {
  if (typeof value === 'string') return `"${value}"`;
  const type = (value as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? `"${type}"` : typeof value;
};

/**
 * Builds the leaves of a machine and the plan of every transition from every leaf, refusing any
 * feature outside the subset sagachart's compiler emits. Follows XState 5's algorithms
 * (`stateUtils.ts`: transition domain, exit set, entry set, and their action order).
 */
export class Planner<TTable> {
  readonly #machine: ChartMachine;
  readonly #childOf: (src: string, node: ChartNode) => ChildLogic<TTable>;
  readonly #leaves = new Map<ChartNode, Leaf<TTable>>();

  constructor(machine: ChartMachine, childOf: (src: string, node: ChartNode) => ChildLogic<TTable>) {
    this.#machine = machine;
    this.#childOf = childOf;
  }

  /** Every leaf of the machine, with its candidates planned. */
  build(): Map<ChartNode, Leaf<TTable>> {
    for (const node of this.#machine.idMap.values()) this.#check(node);
    for (const node of this.#machine.idMap.values()) if (node.type === 'atomic' || node.type === 'final') this.#leaf(node);
    for (const leaf of this.#leaves.values()) this.#plan(leaf);
    return this.#leaves;
  }

  /** The plan of entering the machine: XState's initial microstep from the root. */
  initialPlan(): Plan<TTable> {
    const root = this.#machine.root;
    const entered: ChartNode[] = [root];
    for (let node = root; node.type === 'compound'; ) {
      node = node.initial.target[0]!;
      entered.push(node);
    }
    return this.#enter(entered, [], entered[entered.length - 1]!);
  }

  #check(node: ChartNode): void {
    if (node.type === 'parallel') throw new SagaChartUnsupportedError(node.id, 'a parallel state');
    if (node.type === 'history') throw new SagaChartUnsupportedError(node.id, 'a history state');
    if (node.after.length) throw new SagaChartUnsupportedError(node.id, 'a delayed transition (after)');
    if (node.type === 'final' && node.parent !== this.#machine.root && node.parent !== undefined) {
      throw new SagaChartUnsupportedError(node.id, 'a final state below the top level (done.state events)');
    }
    if (node.type === 'final' && node.output !== undefined) throw new SagaChartUnsupportedError(node.id, 'an output on a final state');
    if (node.type === 'compound' && node.initial.actions.length) throw new SagaChartUnsupportedError(node.id, 'actions on an initial transition');
    for (const key of node.transitions.keys()) {
      if (key === '*' || key.endsWith('.*')) throw new SagaChartUnsupportedError(node.id, `the wildcard event descriptor "${key}"`);
    }
    for (const def of node.invoke) {
      if (typeof def.src !== 'string') throw new SagaChartUnsupportedError(node.id, 'an invoke whose src is not a registered name');
      if (def.systemId !== undefined) throw new SagaChartUnsupportedError(node.id, 'an invoke with a systemId');
      if (def.onSnapshot !== undefined) throw new SagaChartUnsupportedError(node.id, 'an invoke with onSnapshot');
    }
  }

  #leaf(node: ChartNode): Leaf<TTable> {
    let leaf = this.#leaves.get(node);
    if (leaf) return leaf;
    let value: StateValue = node.key;
    for (let m = node.parent; m && m.parent; m = m.parent) value = { [m.key]: value };
    const chain = [node, ...properAncestors(node, undefined)];
    leaf = {
      node,
      value,
      tags: new Set(chain.flatMap((n) => n.tags)),
      on: new Map(),
      always: [],
      final: node.type === 'final',
    };
    this.#leaves.set(node, leaf);
    return leaf;
  }

  #plan(leaf: Leaf<TTable>): void {
    const chain = [leaf.node, ...properAncestors(leaf.node, undefined)];
    const types = new Set<string>();
    for (const n of chain) for (const key of n.transitions.keys()) types.add(key);
    for (const type of types) {
      const candidates: Array<Candidate<TTable>> = [];
      for (const n of chain) for (const t of n.transitions.get(type) ?? []) candidates.push(this.#candidate(leaf, t));
      leaf.on.set(type, candidates);
    }
    leaf.always = chain.flatMap((n) => (n.always ?? []).map((t) => this.#candidate(leaf, t)));
  }

  #candidate(from: Leaf<TTable>, t: TransitionDefinition): Candidate<TTable> {
    return { guard: this.#guard(t), plan: this.#transition(from, t), acts: t.target !== undefined || t.actions.length > 0 };
  }

  #guard(t: TransitionDefinition): Guard | undefined {
    if (t.guard === undefined) return undefined;
    const guard = typeof t.guard === 'string' ? this.#machine.implementations.guards[t.guard] : t.guard;
    if (typeof guard !== 'function' || 'check' in guard) {
      throw new SagaChartUnsupportedError(t.source.id, `the guard ${describe(t.guard)} (only inline or named guard functions are supported)`);
    }
    return guard as Guard;
  }

  /** XState's `getTransitionDomain`. */
  #domain(t: TransitionDefinition, targets: readonly ChartNode[]): ChartNode | undefined {
    if (!t.reenter && targets.every((s) => s === t.source || isDescendant(s, t.source))) return t.source;
    const [head, ...tail] = [...targets, t.source];
    for (const anc of properAncestors(head!, undefined)) if (tail.every((s) => isDescendant(s, anc))) return anc;
    if (t.reenter) return undefined;
    return this.#machine.root;
  }

  #transition(from: Leaf<TTable>, t: TransitionDefinition): Plan<TTable> {
    const targets = t.target;
    if (!targets?.length) {
      const ops: Array<Op<TTable>> = [];
      this.#actions(t.actions, t.source, ops);
      return { ops, to: from, done: false };
    }
    const domain = this.#domain(t, targets);
    const active = [from.node, ...properAncestors(from.node, undefined)];
    const exited = active
      .filter((n) => isDescendant(n, domain) || (t.reenter && t.source === domain && n === domain))
      .sort((a, b) => b.order - a.order);
    const ops: Array<Op<TTable>> = [];
    for (const n of exited) {
      this.#actions(n.exit, n, ops);
      for (const def of n.invoke) ops.push({ op: 'stop', id: def.id });
    }
    this.#actions(t.actions, t.source, ops);
    // XState's computeEntrySet.
    const entered = new Set<ChartNode>();
    for (const s of targets) {
      if (t.source !== s || t.source !== domain || t.reenter) {
        entered.add(s);
        // Default entry: down the initial states (their initial actions are refused by #check).
        for (let n = s; n.type === 'compound'; ) {
          n = n.initial.target[0]!;
          entered.add(n);
        }
      }
    }
    const reentrancy = !t.source.parent && t.reenter ? undefined : domain;
    for (const s of targets) {
      for (const anc of properAncestors(s, domain)) if (!reentrancy || isDescendant(anc, reentrancy)) entered.add(anc);
    }
    const order = [...entered].sort((a, b) => a.order - b.order);
    const stays = !exited.includes(from.node);
    const leafNode = order.filter((n) => n.type === 'atomic' || n.type === 'final').at(-1) ?? (stays ? from.node : undefined);
    if (!leafNode) throw new SagaChartUnsupportedError(t.source.id, 'a transition that leaves no atomic state active');
    return this.#enter(order, ops, leafNode);
  }

  /** Entry of `order` (document order), after `ops`; XState's enterStates, and completion. */
  #enter(order: readonly ChartNode[], ops: Array<Op<TTable>>, leafNode: ChartNode): Plan<TTable> {
    let done = false;
    for (const n of order) {
      this.#actions(n.entry, n, ops);
      for (const def of n.invoke) {
        const src = def.src as string;
        ops.push({ op: 'spawn', id: def.id, src, input: def.input, child: this.#childOf(src, n) });
      }
      if (n.type === 'final') {
        ops.push({ op: 'done' });
        done = true;
      }
    }
    if (done) {
      // On completion XState runs the exit actions of every active state, deepest first.
      for (const n of [leafNode, ...properAncestors(leafNode, undefined)]) this.#actions(n.exit, n, ops);
    }
    return { ops, to: this.#leaf(leafNode), done };
  }

  #actions(list: readonly unknown[], node: ChartNode, into: Array<Op<TTable>>): void {
    for (const item of list) {
      const action = typeof item === 'string' ? this.#machine.implementations.actions[item] : item;
      if (typeof action !== 'function') throw new SagaChartUnsupportedError(node.id, `the action ${describe(item)}`);
      const make = effectMakerOf(action);
      if (make) {
        into.push({ op: 'effect', make });
        continue;
      }
      const builtin = action as unknown as { type?: unknown; assignment?: unknown; to?: unknown; event?: unknown; delay?: unknown; resolve?: unknown };
      if (builtin.type === 'xstate.assign') {
        const assignment = builtin.assignment;
        if (typeof assignment === 'function') into.push({ op: 'assign', assignment: assignment as (args: ChartArgs, params: undefined) => Record<string, unknown> });
        else if (assignment && typeof assignment === 'object') into.push({ op: 'assignProps', props: Object.entries(assignment) });
        else throw new SagaChartUnsupportedError(node.id, 'an assign without an assignment');
      } else if (builtin.type === 'xstate.sendTo') {
        if (typeof builtin.to !== 'string' || builtin.to.startsWith('#_')) {
          throw new SagaChartUnsupportedError(node.id, `a sendTo whose target is not a child id (${typeof builtin.to === 'string' ? builtin.to : typeof builtin.to}: sendParent, forwardTo…)`);
        }
        if (builtin.delay !== undefined) throw new SagaChartUnsupportedError(node.id, 'a delayed sendTo');
        if (typeof builtin.event === 'string') throw new SagaChartUnsupportedError(node.id, 'a sendTo of an event name');
        into.push({ op: 'sendTo', to: builtin.to, event: builtin.event });
      } else if (builtin.resolve !== undefined) {
        throw new SagaChartUnsupportedError(node.id, `the built-in action ${describe(action)}`);
      } else {
        throw new SagaChartUnsupportedError(node.id, 'a custom action (declare what the runtime must do with effectAction)');
      }
    }
  }
}
