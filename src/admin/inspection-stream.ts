import type { InspectionEvent } from 'xstate';
import type { InspectObserver } from '../runtime/inspection.js';

/** What the admin API's event stream tells of one inspection event. */
export interface InspectionSummary {
  type: string;
  /** The actor: the execution's uuid, or a child of it. */
  actor: string;
  /** The event's type (`@xstate.event`), when there is one. */
  event?: string;
  /** The chart's state value and actor status after it (`@xstate.snapshot`). */
  value?: unknown;
  status?: string;
}

/**
 * Fans the manager's inspection events out: to an observer of yours (the Stately inspector, say)
 * and, summarised, to whoever listens (the admin API's event stream, for networks without
 * internet). Give `stream.inspect` to `new SagaManager({ inspect })`.
 *
 * @example
 * ```ts
 * const stream = new InspectionStream({ forward: createBrowserInspector().inspect });
 * const manager = new SagaManager({ inspect: stream.inspect, ... });
 * new AdminApi({ manager, inspection: stream, token });
 * ```
 */
export class InspectionStream {
  readonly #forward: InspectObserver | undefined;
  readonly #listeners = new Set<(summary: InspectionSummary) => void>();

  constructor(options: { forward?: InspectObserver } = {}) {
    this.#forward = options.forward;
  }

  /** The observer to give the manager. */
  readonly inspect = (event: InspectionEvent): void => {
    const forward = this.#forward;
    if (forward) {
      try {
        if (typeof forward === 'function') forward(event);
        else forward.next?.(event);
      } catch {
        // An inspector that fails must not fail executions.
      }
    }
    if (!this.#listeners.size) return;
    const summary = summarise(event);
    for (const listener of this.#listeners) {
      try {
        listener(summary);
      } catch {
        // Listeners are the admin API's streams; they drop themselves when their peer is gone.
      }
    }
  };

  /** Listens from now on; returns the function that stops it. */
  listen(listener: (summary: InspectionSummary) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function summarise(event: InspectionEvent): InspectionSummary {
  const actor = String((event.actorRef as { id?: unknown } | undefined)?.id ?? '');
  const summary: InspectionSummary = { type: event.type, actor };
  if (event.type === '@xstate.event') summary.event = String(event.event?.type ?? '');
  if (event.type === '@xstate.snapshot') {
    const snapshot = event.snapshot as { value?: unknown; status?: string };
    summary.value = snapshot.value;
    if (snapshot.status !== undefined) summary.status = snapshot.status;
  }
  return summary;
}
