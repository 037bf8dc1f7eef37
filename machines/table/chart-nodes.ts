/**
 * What the transition table reads of an XState v5 machine: its state nodes, their transitions,
 * invocations and actions, typed structurally. These are XState's own objects (`machine.root`,
 * `machine.idMap`), read once when a table is built; the version of xstate is pinned because
 * the table, like the persisted snapshot, follows its internals.
 */

/** An XState state node, as far as the table reads it. */
export interface ChartNode {
  readonly id: string;
  readonly key: string;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  readonly parent?: ChartNode;
  /** Document order: entry runs in ascending, exit in descending order. */
  readonly order: number;
  readonly tags: readonly string[];
  readonly entry: readonly unknown[];
  readonly exit: readonly unknown[];
  readonly invoke: readonly InvokeDefinition[];
  readonly transitions: ReadonlyMap<string, readonly TransitionDefinition[]>;
  readonly always?: readonly TransitionDefinition[];
  readonly after: readonly unknown[];
  readonly initial: { readonly target: readonly ChartNode[]; readonly actions: readonly unknown[] };
  readonly states: Readonly<Record<string, ChartNode>>;
  readonly output?: unknown;
}

/** A transition of a state node (XState's `TransitionDefinition`). */
export interface TransitionDefinition {
  readonly target: readonly ChartNode[] | undefined;
  readonly source: ChartNode;
  readonly actions: readonly unknown[];
  readonly reenter: boolean;
  readonly guard?: unknown;
  readonly eventType: string;
}

/** An invocation of a state node (XState's `InvokeDefinition`). */
export interface InvokeDefinition {
  readonly id: string;
  readonly src: unknown;
  readonly input?: unknown;
  readonly systemId?: string;
  readonly onSnapshot?: unknown;
}

/** An XState machine, as far as the table reads it. */
export interface ChartMachine {
  readonly id: string;
  readonly root: ChartNode;
  readonly idMap: ReadonlyMap<string, ChartNode>;
  readonly implementations: {
    readonly actors: Readonly<Record<string, unknown>>;
    readonly actions: Readonly<Record<string, unknown>>;
    readonly guards: Readonly<Record<string, unknown>>;
  };
  readonly config: { readonly context?: unknown; readonly output?: unknown };
}

/** Whether a piece of actor logic is a state machine (the table interprets it) rather than a task. */
export function isChartMachine(logic: unknown): logic is ChartMachine {
  return typeof logic === 'object' && logic !== null && 'root' in logic && 'idMap' in logic && 'implementations' in logic;
}

/** Whether `child` is a proper descendant of `parent` (XState's `isDescendant`). */
export function isDescendant(child: ChartNode, parent: ChartNode | undefined): boolean {
  let marker = child;
  while (marker.parent && marker.parent !== parent) marker = marker.parent;
  return marker.parent === parent;
}

/** The ancestors of `node` below `upTo`, nearest first (XState's `getProperAncestors`). */
export function properAncestors(node: ChartNode, upTo: ChartNode | undefined): ChartNode[] {
  const out: ChartNode[] = [];
  let marker = node.parent;
  while (marker && marker !== upTo) {
    out.push(marker);
    marker = marker.parent;
  }
  return out;
}
