import type { AnyStateNode, StateValue } from 'xstate';
import { compileSaga, type SagaMachine } from '../../machines/compile.js';
import { sagaDiagram } from '../../machines/diagram.js';
import type { Saga } from '../definition/saga.js';

/** One state of a compiled saga chart, as the dashboard draws it. */
export interface ChartNode {
  /** XState's state node id (`<machine>.running.reserve.executing`). */
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  tags: string[];
  /** Ids of the children started in this state (a remote step's request, a handler). */
  invokes: string[];
  /** The initial child's id, for a compound state. */
  initial: string | null;
  transitions: Array<{ event: string; targets: string[] }>;
  children: ChartNode[];
}

/** A saga's compiled chart: the structure, and the same as a Mermaid state diagram. */
export interface SagaChart {
  sagaName: string;
  definitionHash: string;
  machineId: string;
  root: ChartNode;
  mermaid: string;
}

function nodeOf(node: AnyStateNode): ChartNode {
  const transitions: ChartNode['transitions'] = [];
  for (const [event, defs] of node.transitions) {
    for (const def of defs) transitions.push({ event, targets: (def.target ?? []).map((t) => t.id) });
  }
  for (const def of node.always ?? []) transitions.push({ event: '(always)', targets: (def.target ?? []).map((t) => t.id) });
  const initial = node.type === 'compound' ? (node.initial?.target?.[0]?.id ?? null) : null;
  return {
    id: node.id,
    key: node.key,
    type: node.type,
    tags: [...node.tags],
    invokes: node.invoke.map((i) => i.id),
    initial,
    transitions,
    children: Object.values(node.states as Record<string, AnyStateNode>).map(nodeOf),
  };
}

/** The ids of the states active in `value` (every ancestor included), for lighting the chart. */
export function activeStateIds(machine: SagaMachine, value: StateValue | null): string[] {
  if (value === null) return [];
  const ids: string[] = [machine.root.id];
  const walk = (node: AnyStateNode, v: StateValue): void => {
    const entries: Array<[string, StateValue | null | undefined]> = typeof v === 'string' ? [[v, null]] : Object.entries(v);
    for (const [key, inner] of entries) {
      const child = (node.states as Record<string, AnyStateNode | undefined>)[key];
      if (!child) continue;
      ids.push(child.id);
      if (inner !== null && inner !== undefined) walk(child, inner);
    }
  };
  walk(machine.root, value);
  return ids;
}

/** Compiles each definition once and keeps its chart, by name and hash. */
export class ChartCache {
  readonly #charts = new Map<string, { machine: SagaMachine; chart: SagaChart }>();

  get(saga: Saga<object>): { machine: SagaMachine; chart: SagaChart } {
    const key = `${saga.name}\u0000${saga.hash}`;
    let entry = this.#charts.get(key);
    if (!entry) {
      const machine = compileSaga(saga);
      entry = { machine, chart: { sagaName: saga.name, definitionHash: saga.hash, machineId: machine.id, root: nodeOf(machine.root), mermaid: sagaDiagram(saga) } };
      this.#charts.set(key, entry);
    }
    return entry;
  }
}
