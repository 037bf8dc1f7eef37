// The deadline heap the manager used before src/runtime/deadline-scheduler.ts: removal by indexOf
// (linear in the number of armed deadlines). Kept only so that bench/deadlines.ts compares the two
// in one run; nothing in src uses it.
import type { Clock, TimerHandle } from '../../src/clock.js';

interface Entry<E> {
  key: string;
  at: number;
  payload: E;
}

/**
 * Deadlines of many executions on one clock timer: a binary min-heap keyed by due time, with at
 * most one entry per key (arming a key again replaces its entry). An execution paused on disk
 * costs one small entry here and nothing else.
 */
export class DeadlineScheduler<E> {
  readonly #clock: Clock;
  readonly #fire: (key: string, payload: E) => void;
  readonly #heap: Entry<E>[] = [];
  readonly #byKey = new Map<string, Entry<E>>();
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;

  constructor(clock: Clock, fire: (key: string, payload: E) => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Arms `key` to fire at `at` (replacing what it had), or disarms it when `at` is `null`. */
  arm(key: string, at: number | null, payload?: E): void {
    const old = this.#byKey.get(key);
    if (old) {
      if (at !== null && old.at === at) {
        old.payload = payload as E;
        return;
      }
      this.#remove(old);
    }
    if (at !== null) {
      const entry = { key, at, payload: payload as E };
      this.#byKey.set(key, entry);
      this.#push(entry);
    }
    this.#reschedule();
  }

  /** Disarms every key. */
  clear(): void {
    this.#heap.length = 0;
    this.#byKey.clear();
    this.#reschedule();
  }

  #tick = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    while (this.#heap.length && this.#heap[0]!.at <= now) {
      const entry = this.#heap[0]!;
      this.#remove(entry);
      this.#fire(entry.key, entry.payload);
    }
    this.#reschedule();
  };

  #reschedule(): void {
    const next = this.#heap[0]?.at ?? Infinity;
    if (next === this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next !== Infinity) {
      // Timers of Node fire at most ~24.8 days ahead; a later deadline re-checks then.
      this.#timer = this.#clock.setTimeout(this.#tick, Math.min(Math.max(0, next - this.#clock.now()), 2 ** 31 - 1));
    }
  }

  #remove(entry: Entry<E>): void {
    this.#byKey.delete(entry.key);
    const i = this.#heap.indexOf(entry);
    if (i === -1) return;
    const last = this.#heap.pop()!;
    if (i < this.#heap.length) {
      this.#heap[i] = last;
      this.#down(i);
      this.#up(i);
    }
  }

  #push(entry: Entry<E>): void {
    this.#heap.push(entry);
    this.#up(this.#heap.length - 1);
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
}
