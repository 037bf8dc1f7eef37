import type { JsonValue } from '../json.js';
import type { StepPhase } from './request-id.js';

/**
 * A request on its way to a participant: what the outbox holds, what brokers carry, and what
 * participants receive. Stored with the execution before it is sent, and sent again by recovery
 * until it is answered.
 *
 * @example
 * ```ts
 * broker.send({ requestId: 'u1/execute/1/charge', uuid: 'u1', sagaName: 'order', step: 'charge',
 *   phase: 'execute', attempt: 1, target: 'payment.charge', content: { amount: 30 }, deadline: null });
 * ```
 */
export interface OutgoingRequest {
  /** Stable across re-sends of one attempt; participants deduplicate on it. */
  requestId: string;
  uuid: string;
  sagaName: string;
  step: string;
  phase: StepPhase;
  attempt: number;
  target: string;
  content: JsonValue;
  /** When the attempt times out (ms since the epoch), or `null`. */
  deadline: number | null;
  /** Who started the execution (`run(saga, { user })`), when given. */
  user?: string;
}
