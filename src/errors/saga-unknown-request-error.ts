import { SagaError } from './saga-error.js';

/**
 * A response names a request id that sagachart did not issue (malformed, or from another system).
 *
 * @example
 * ```ts
 * await manager.resume(new SagaResponse({ requestId: 'nonsense' })); // throws SagaUnknownRequestError
 * ```
 */
export class SagaUnknownRequestError extends SagaError {
  readonly requestId: string;
  constructor(requestId: string) {
    super('SAGA_UNKNOWN_REQUEST', `Request id '${requestId}' was not issued by sagachart. Answer with the requestId of the request you received.`);
    this.requestId = requestId;
  }
}
