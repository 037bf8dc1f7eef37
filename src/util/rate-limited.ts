import type { Clock } from '../clock.js';

/**
 * Lets a repeated event through at most once per `intervalMs`, counting the ones held back, so
 * that a flood (a peer sending garbage, a server down) makes one log line per interval, not one
 * per event.
 *
 * @example
 * ```ts
 * const foreign = new RateLimited(clock, 1_000);
 * foreign.hit((suppressed) => log.warn('ignored a foreign response', { suppressed }));
 * ```
 */
export class RateLimited {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  #last = -Infinity;
  #suppressed = 0;

  constructor(clock: Clock, intervalMs: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /** Runs `emit` (with the number held back since the last one) if the interval has passed; else counts. */
  hit(emit: (suppressed: number) => void): void {
    const now = this.#clock.now();
    if (now - this.#last < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    this.#last = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    emit(suppressed);
  }
}
