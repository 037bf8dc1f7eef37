import type { OutgoingRequest } from '../messages/outgoing-request.js';
import type { SagaResponseData } from '../messages/saga-response.js';

/** Receives participants' responses; the manager attaches one. */
export type ResponseListener = (response: SagaResponseData) => void;

/**
 * How the orchestrator reaches participants. Delivery is at least once: the manager may send the
 * same request (same `requestId`) again after a restart or a reconnect, and participants
 * deduplicate on it. `InProcessBroker` runs participants in this process; `WebSocketBroker`
 * serves remote ones.
 *
 * @example
 * ```ts
 * class MyBroker implements SagaBroker {
 *   attach(listener) { this.listener = listener; }
 *   send(request) { queue.publish(request.target, request); }
 *   async close() {}
 * }
 * ```
 */
export interface SagaBroker {
  /** Sets where responses go. Called once by the manager that uses the broker. */
  attach(listener: ResponseListener): void;
  /** Sends (or queues) a request. Must not throw for delivery problems: retries are the broker's. */
  send(request: OutgoingRequest): void;
  /** Stops the broker. */
  close(): Promise<void>;
}
