import { SagaError } from './saga-error.js';

/**
 * Thrown by a participant handler to refuse a request for a business reason (out of stock,
 * card declined). It becomes a response with status 400, handled by the step's `onError`;
 * any other thrown error becomes 500 and is retried.
 *
 * @example
 * ```ts
 * handlers: { 'inventory.reserve': (items) => { if (!inStock(items)) throw new SagaBusinessError('out of stock'); } }
 * ```
 */
export class SagaBusinessError extends SagaError {
  readonly content: unknown;
  constructor(message: string, content?: unknown) {
    super('SAGA_BUSINESS_ERROR', message);
    this.content = content ?? { message };
  }
}
