import { SagaError } from './saga-error.js';

/**
 * The initial context of a run does not match the saga's zod schema.
 *
 * @example
 * ```ts
 * const saga = new Saga('x', { context: z.object({ orderId: z.string() }) });
 * await manager.run(saga, { context: {} }); // throws SagaContextValidationError naming orderId
 * ```
 */
export class SagaContextValidationError extends SagaError {
  readonly sagaName: string;
  readonly issues: ReadonlyArray<{ path: string; message: string }>;
  constructor(sagaName: string, issues: ReadonlyArray<{ path: string; message: string }>) {
    const list = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    super('SAGA_CONTEXT_INVALID', `The context given to saga '${sagaName}' does not match its schema: ${list}. Fix these fields in run(saga, { context }).`);
    this.sagaName = sagaName;
    this.issues = issues;
  }
}
