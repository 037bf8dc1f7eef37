import type { JsonValue } from '../json.js';

/**
 * What a remote step's `onExecute` (or `onFailure`) returns: the request to send to a participant.
 * `target` is `service.action` (routed to the participant that declared it, or to the service).
 *
 * @example
 * ```ts
 * .onExecute((ctx) => new SagaRequest('inventory.reserve', { items: ctx.items }))
 * ```
 */
export class SagaRequest<C extends JsonValue = JsonValue> {
  readonly target: string;
  readonly content: C;

  constructor(target: string, content: C) {
    if (typeof target !== 'string' || target.length === 0) {
      throw new TypeError(`SagaRequest target must be a non-empty string such as "inventory.reserve", got ${JSON.stringify(target)}.`);
    }
    this.target = target;
    this.content = content;
  }

  /** The service part of the target (`inventory` for `inventory.reserve`). */
  get service(): string {
    return serviceOf(this.target);
  }
}

/** The service part of a target: everything before the first dot. */
export function serviceOf(target: string): string {
  const dot = target.indexOf('.');
  return dot === -1 ? target : target.slice(0, dot);
}
