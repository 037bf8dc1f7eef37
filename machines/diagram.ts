import type { Saga } from '../src/definition/saga.js';
import { compileDefinition, compileSaga } from './compile.js';
import type { CompiledStep } from './step-states.js';

const node = (path: string) => `s_${path.replace(/[^A-Za-z0-9_]/g, '_')}`;

function stepLabel(step: CompiledStep): string {
  const d = step.definition;
  const parts: string[] = [step.name, d.kind];
  if (d.kind === 'remote') {
    if (d.timeoutMs !== undefined) parts.push(`timeout ${d.timeoutMs} ms`);
    if (d.retryPolicy && d.retryPolicy.attempts > 1) parts.push(`${d.retryPolicy.attempts} attempts`);
  }
  if (d.kind !== 'conditional' && d.onFailureHandler) parts.push('compensable');
  return parts.join(' · ');
}

function list(steps: readonly CompiledStep[], indent: string, lines: string[]): void {
  steps.forEach((step, i) => {
    const id = node(step.path);
    if (step.kind === 'conditional') {
      lines.push(`${indent}state "${stepLabel(step)}" as ${id} {`);
      lines.push(`${indent}  state ${id}_choice <<choice>>`);
      lines.push(`${indent}  [*] --> ${id}_choice`);
      for (const branch of step.branches) {
        const bid = `${id}__${branch.key.replace(/[^A-Za-z0-9_]/g, '_')}`;
        lines.push(`${indent}  state "${branch.key}" as ${bid} {`);
        list(branch.steps, `${indent}    `, lines);
        lines.push(`${indent}  }`);
        const cond = (step.definition.kind === 'conditional' && step.definition.branches.find((b) => b.key === branch.key)?.condition) ? 'if' : 'else';
        lines.push(`${indent}  ${id}_choice --> ${bid}: ${cond}`);
        lines.push(`${indent}  ${bid} --> [*]`);
      }
      lines.push(`${indent}  ${id}_choice --> [*]: none`);
      lines.push(`${indent}}`);
    } else {
      lines.push(`${indent}state "${stepLabel(step)}" as ${id}`);
    }
    const next = steps[i + 1];
    if (i === 0) lines.push(`${indent}[*] --> ${id}`);
    if (next) lines.push(`${indent}${id} --> ${node(next.path)}`);
    else lines.push(`${indent}${id} --> [*]`);
  });
}

function compensations(steps: readonly CompiledStep[], out: string[]): void {
  for (const step of steps) {
    if (step.kind === 'conditional') for (const b of step.branches) compensations(b.steps, out);
    else if (step.compensable) out.push(node(step.path));
  }
}

/** Options of {@link sagaDiagram}. */
export interface SagaDiagramOptions {
  /**
   * `states`: every state and transition of the compiled machine. `steps`: one box per step, in
   * order, with the rollback path summarised. @defaultValue 'states'
   */
  detail?: 'states' | 'steps';
}

/**
 * The compiled chart of a saga as Mermaid `stateDiagram-v2` text. By default it is drawn from
 * the XState machine itself: the `SagaStatus` states at the top, each step a composite state
 * whose sub-states are its `SagaStepStatus` values, and every transition; a transition that
 * crosses from one step into another is drawn between the two steps, labelled with the
 * sub-states it leaves and enters (Mermaid cannot draw arrows between states of different
 * composites).
 *
 * @example
 * ```ts
 * console.log(sagaDiagram(CREATE_ORDER)); // paste into any Mermaid renderer
 * ```
 */
export function sagaDiagram<T extends object>(saga: Saga<T>, options: SagaDiagramOptions = {}): string {
  return options.detail === 'steps' ? stepsDiagram(saga) : statesDiagram(saga);
}

interface Node {
  key: string;
  id: string;
  type: string;
  parent?: Node;
  states: Record<string, Node>;
  tags: string[];
  always?: Transition[];
  on: Record<string, Transition[]>;
  invoke: Array<{ id: string; src: unknown }>;
  initial: { target: Node[] };
}
interface Transition {
  eventType: string;
  target?: Node[];
}

function eventLabel(eventType: string): string {
  if (eventType === '') return '';
  const done = /^xstate\.done\.actor\.(.*)$/.exec(eventType);
  if (done) return `done ${done[1]!.split(':').pop()}`;
  const error = /^xstate\.error\.actor\.(.*)$/.exec(eventType);
  if (error) return `error ${error[1]!.split(':').pop()}`;
  return eventType;
}

function ancestors(node: Node): Node[] {
  const out: Node[] = [];
  for (let n: Node | undefined = node; n; n = n.parent) out.unshift(n);
  return out;
}

function statesDiagram(saga: Saga<object>): string {
  const machine = compileSaga(saga);
  const root = machine.root as unknown as Node;
  const ids = new Map<Node, string>();
  let seq = 0;
  const idOf = (n: Node) => {
    let id = ids.get(n);
    if (!id) ids.set(n, (id = `n${seq++}`));
    return id;
  };
  // Edges are drawn inside the block of the lowest common ancestor of their ends.
  const edges = new Map<Node, Set<string>>();
  const walk = (node: Node) => {
    const transitions = [...Object.values(node.on).flat(), ...(node.always ?? [])];
    for (const t of transitions) {
      for (const target of t.target ?? []) {
        const a = ancestors(node);
        const b = ancestors(target);
        let i = 0;
        while (i < a.length && i < b.length && a[i] === b[i]) i++;
        const lca = a[i - 1]!;
        const from = a[i] ?? node;
        const to = b[i] ?? target;
        const lifted = from !== node || to !== target;
        const label = [eventLabel(t.eventType), lifted ? `${node.key} → ${target.key}` : ''].filter(Boolean).join(' · ');
        let set = edges.get(lca);
        if (!set) edges.set(lca, (set = new Set()));
        set.add(`${idOf(from)} --> ${idOf(to)}${label ? `: ${label}` : ''}`);
      }
    }
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(root);
  const lines = ['stateDiagram-v2', `  %% ${machine.id}`];
  const block = (node: Node, indent: string) => {
    const children = Object.values(node.states);
    if (node !== root) {
      const tags = node.tags.length ? ` [${node.tags.join(', ')}]` : '';
      const invokes = node.invoke.map((i) => String(i.src)).filter((s) => s !== 'handler');
      const label = `${node.key}${tags}${invokes.length ? ` ⇢ ${invokes.join(', ')}` : ''}`;
      if (!children.length) {
        lines.push(`${indent}state "${label}" as ${idOf(node)}`);
        if (node.type === 'final') lines.push(`${indent}${idOf(node)} --> [*]`);
        return;
      }
      lines.push(`${indent}state "${label}" as ${idOf(node)} {`);
    }
    const inner = node === root ? indent : `${indent}  `;
    for (const child of children) block(child, inner);
    const first = node.initial?.target?.[0];
    if (first) lines.push(`${inner}[*] --> ${idOf(first)}`);
    for (const edge of edges.get(node) ?? []) lines.push(`${inner}${edge}`);
    if (node !== root) lines.push(`${indent}}`);
  };
  block(root, '  ');
  return lines.join('\n');
}

function stepsDiagram(saga: Saga<object>): string {
  const compiled = compileDefinition(saga);
  const lines = ['stateDiagram-v2', `  %% ${compiled.machine.id}`, '  [*] --> created', '  created --> running: saga.start', '  state running {'];
  list(compiled.steps, '    ', lines);
  lines.push('  }');
  const { twoPhaseCommit } = saga.options;
  const done = twoPhaseCommit ? 'committing' : 'finished';
  lines.push(`  running --> ${done}: all steps done (autocommit)`);
  lines.push('  running --> awaiting_commit: all steps done (autocommit false)');
  lines.push(`  awaiting_commit --> ${done}: commit()`);
  lines.push('  awaiting_commit --> compensating: reject(), rollback(), abort()');
  lines.push('  running --> compensating: a step fails, abort()');
  if (twoPhaseCommit) {
    lines.push('  committing --> finished: every service voted yes to reserve, then acknowledged commit');
    lines.push('  committing --> compensating: a service refused to reserve or did not answer in time');
  }
  const comp: string[] = [];
  compensations(compiled.steps, comp);
  const undo = comp.length ? 'onFailure of executed steps, in reverse' : 'nothing to compensate';
  if (twoPhaseCommit) {
    lines.push(`  compensating --> rejecting: ${undo}`);
    lines.push('  rejecting --> errored: every service that took part acknowledged reject');
  } else lines.push(`  compensating --> errored: ${undo}`);
  lines.push('  finished --> [*]');
  lines.push('  note right of compensating: each compensable step enters running-on-failure, paused-on-failure, then compensated or errored-on-failure');
  return lines.join('\n');
}
