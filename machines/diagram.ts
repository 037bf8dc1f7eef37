import type { Saga } from '../src/definition/saga.js';
import { compileSaga } from './compile.js';
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

/**
 * The compiled chart of a saga as Mermaid `stateDiagram-v2` text: the SagaStatus states at the
 * top, the steps in order inside `running` (conditional steps with their branches), and the
 * rollback path that compensates executed steps in reverse.
 *
 * @example
 * ```ts
 * console.log(sagaDiagram(CREATE_ORDER)); // paste into any Mermaid renderer
 * ```
 */
export function sagaDiagram<T extends object>(saga: Saga<T>): string {
  const compiled = compileSaga(saga);
  const lines = ['stateDiagram-v2', `  %% ${compiled.machine.id}`, '  [*] --> created', '  created --> running: saga.start', '  state running {'];
  list(compiled.steps, '    ', lines);
  lines.push('  }');
  lines.push('  running --> finished: all steps done (autocommit)');
  lines.push('  running --> awaiting_commit: all steps done (autocommit false)');
  lines.push('  awaiting_commit --> finished: commit()');
  lines.push('  awaiting_commit --> compensating: reject()');
  lines.push('  running --> compensating: a step fails');
  const comp: string[] = [];
  compensations(compiled.steps, comp);
  lines.push(`  compensating --> errored: ${comp.length ? 'onFailure of executed steps, in reverse' : 'nothing to compensate'}`);
  lines.push('  finished --> [*]');
  lines.push('  note right of compensating: each compensable step enters running-on-failure, paused-on-failure, then compensated or errored-on-failure');
  return lines.join('\n');
}
