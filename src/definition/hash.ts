import { createHash } from 'node:crypto';
import type { Saga } from './saga.js';
import type { SagaStep } from './steps.js';

type Shape = [kind: string, name: string, hooks: string, branches?: Array<[key: string, steps: Shape[]]>];

function shapeOf(step: SagaStep): Shape {
  switch (step.kind) {
    case 'local':
      return ['local', step.name, hooks({ x: step.onExecuteHandler, f: step.onFailureHandler })];
    case 'remote':
      return [
        'remote',
        step.name,
        hooks({ x: step.onExecuteHandler, s: step.onSuccessHandler, e: step.onErrorHandler, f: step.onFailureHandler }),
      ];
    case 'conditional':
      return ['conditional', step.name, '', step.branches.map((b) => [`${b.condition ? 'if' : 'else'}:${b.key}`, b.saga.steps.map(shapeOf)])];
  }
}

function hooks(set: Record<string, unknown>): string {
  return Object.entries(set)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k)
    .join('');
}

/**
 * Hash of a definition's structure: what states its chart has. Handlers' code, timeouts and retry
 * policies are not part of it (they change no state), so editing them keeps snapshots restorable.
 */
export function definitionHash(saga: Saga<object>): string {
  const callbacks = hooks({ S: saga.callbacks.onSuccess, F: saga.callbacks.onFailure });
  // Without callbacks the shape is what it was before they existed, so those hashes hold.
  const shape = JSON.stringify(callbacks ? [saga.name, saga.steps.map(shapeOf), callbacks] : [saga.name, saga.steps.map(shapeOf)]);
  return createHash('sha256').update(shape).digest('hex').slice(0, 12);
}
