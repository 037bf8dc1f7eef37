import type { OutgoingRequest } from '../messages/outgoing-request.js';
import { ParticipantRuntime, type ParticipantHandlers, type TransactionHooks } from '../participant/participant-runtime.js';
import { serviceOf } from '../messages/saga-request.js';
import type { ResponseListener, SagaBroker } from './saga-broker.js';

/**
 * A broker whose participants live in this process: for tests, examples and modular monoliths.
 * Requests and responses go through the event loop (never synchronously), like a network would;
 * a request for which no participant is registered is held until one is.
 *
 * @example
 * ```ts
 * const broker = new InProcessBroker();
 * broker.participant('inventory', { 'inventory.reserve': (items) => ({ id: 'r-1' }) });
 * const manager = new SagaManager({ broker, sagas: [CREATE_ORDER] });
 * ```
 */
export class InProcessBroker implements SagaBroker {
  readonly #participants: ParticipantRuntime[] = [];
  readonly #held: OutgoingRequest[] = [];
  #listener: ResponseListener | undefined;
  #closed = false;

  /**
   * Registers a participant service with its handlers (and the hooks of the two-phase commit, if
   * it holds its changes until commit); held requests it handles are delivered.
   */
  participant(service: string, handlers: ParticipantHandlers, hooks: TransactionHooks = {}): ParticipantRuntime {
    const runtime = new ParticipantRuntime({ service, handlers, ...hooks });
    this.#participants.push(runtime);
    const held = this.#held.splice(0);
    for (const request of held) this.send(request);
    return runtime;
  }

  attach(listener: ResponseListener): void {
    this.#listener = listener;
  }

  send(request: OutgoingRequest): void {
    if (this.#closed) return;
    const participant = this.#participants.find((p) => p.takes(request) || p.service === serviceOf(request.target));
    if (!participant) {
      this.#held.push(request);
      return;
    }
    setImmediate(() => {
      void participant
        .handle(request.content, {
          requestId: request.requestId,
          uuid: request.uuid,
          sagaName: request.sagaName,
          target: request.target,
          step: request.step,
          phase: request.phase,
          attempt: request.attempt,
          ...(request.user ? { user: request.user } : {}),
        })
        .then((response) => {
          if (!this.#closed) setImmediate(() => this.#listener?.(response));
        });
    });
  }

  /** Drops the held requests and answers nothing from then on. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#held.length = 0;
  }
}
