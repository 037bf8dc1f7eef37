import { InProcessBroker, ParticipantRuntime, type OutgoingRequest, type ParticipantHandlers } from '../../src/index.js';
import { serviceOf } from '../../src/messages/saga-request.js';

/**
 * An `InProcessBroker` that keeps every request it delivers to a participant, in order (`sent`):
 * what participants saw, re-sends included. A request held for a participant that is not
 * registered yet is recorded when it is delivered, as the broker delivers it.
 *
 * @example
 * ```ts
 * const broker = new RecordingInProcessBroker();
 * broker.participant('inventory', { 'inventory.reserve': () => ({ id: 'r-1' }) });
 * // … run a saga …
 * expect(broker.sent.map((r) => r.target)).toEqual(['inventory.reserve']);
 * ```
 */
export class RecordingInProcessBroker extends InProcessBroker {
  /** Every request delivered to a participant, in order. */
  readonly sent: OutgoingRequest[] = [];
  /** Stand-ins that answer `handles()` as the broker's own runtimes do, to tell delivered from held. */
  readonly #matchers: ParticipantRuntime[] = [];
  #closed = false;

  override participant(service: string, handlers: ParticipantHandlers): ParticipantRuntime {
    // Before the broker's own registration: it delivers the held requests through send() at once.
    this.#matchers.push(new ParticipantRuntime({ service, handlers }));
    return super.participant(service, handlers);
  }

  override send(request: OutgoingRequest): void {
    if (!this.#closed && this.#matchers.some((p) => p.handles(request.target) || p.service === serviceOf(request.target))) this.sent.push(request);
    super.send(request);
  }

  override async close(): Promise<void> {
    this.#closed = true;
    await super.close();
  }
}
