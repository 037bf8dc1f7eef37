import type { Clock, TimerHandle } from '../clock.js';

/** Node's timers fire at most ~24.8 days ahead; a later deadline re-checks then. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_CAPACITY = 16;

/**
 * Deadlines of many executions on one clock timer: a binary min-heap by due time with at most one
 * entry per key. The heap keeps each entry's position (`#pos`, updated on every move), so arming a
 * key again or disarming it is O(log n), not a linear search.
 *
 * An entry is its key and its due time, nothing else: the heap is two parallel arrays (keys, and
 * due times in a `Float64Array`) plus the position map, so 100,000 executions paused on disk cost
 * ~60 B each here and no object per entry.
 *
 * Due entries fire in due order inside one clock callback (entries due at the same time in no
 * particular order). A fire callback may arm and disarm any key: a key it disarms does not fire,
 * a key it arms in the future fires then, and a key it arms at or before the current time fires
 * on the next clock callback, not in this one, so that a callback that re-arms itself cannot loop.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(0);
 * const deadlines = new DeadlineScheduler(clock, (uuid) => console.log('due', uuid));
 * deadlines.arm('a', 5_000);
 * deadlines.arm('b', 1_000);
 * deadlines.arm('a', 2_000); // replaces a's entry
 * deadlines.arm('b', null);  // disarms b
 * clock.advance(2_000);      // logs 'due a'
 * ```
 */
export class DeadlineScheduler {
  readonly #clock: Clock;
  readonly #fire: (key: string) => void;
  /** Heap order: `#keys[i]` is due at `#ats[i]`; `#ats[parent(i)] <= #ats[i]`. */
  readonly #keys: string[] = [];
  #ats = new Float64Array(MIN_CAPACITY);
  /** Where each key is in the heap. */
  readonly #pos = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  /** While firing: the time the firing is for, and keys armed at or before it (they wait for the next callback). */
  #firingAt = -Infinity;
  #late: Map<string, number> | null = null;

  constructor(clock: Clock, fire: (key: string) => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  /** Number of keys armed. */
  get size(): number {
    return this.#keys.length + (this.#late?.size ?? 0);
  }

  /** When the earliest armed key is due, or `null` when none is. */
  get nextAt(): number | null {
    let next = this.#keys.length ? this.#ats[0]! : Infinity;
    if (this.#late) for (const at of this.#late.values()) if (at < next) next = at;
    return next === Infinity ? null : next;
  }

  /** Arms `key` to fire at `at` (ms since the epoch), replacing what it had; `null` disarms it. */
  arm(key: string, at: number | null): void {
    if (at !== null && !Number.isFinite(at)) {
      throw new RangeError(`DeadlineScheduler: the due time of '${key}' must be a finite number of ms, got ${at}; pass null to disarm.`);
    }
    const late = this.#late;
    if (late) {
      late.delete(key);
      if (at !== null && at <= this.#firingAt) {
        this.#remove(key);
        late.set(key, at);
        return;
      }
    }
    const i = this.#pos.get(key);
    if (i === undefined) {
      if (at === null) return;
      this.#insert(key, at);
    } else if (at === null) {
      this.#removeAt(i);
    } else {
      const old = this.#ats[i]!;
      if (old === at) return;
      this.#ats[i] = at;
      if (at < old) this.#up(i);
      else this.#down(i);
    }
    this.#reschedule();
  }

  /** Disarms every key. */
  clear(): void {
    this.#keys.length = 0;
    this.#pos.clear();
    this.#late?.clear();
    this.#ats = new Float64Array(MIN_CAPACITY);
    this.#reschedule();
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    this.#firingAt = now;
    this.#late = new Map();
    try {
      while (this.#keys.length && this.#ats[0]! <= now) {
        const key = this.#keys[0]!;
        this.#removeAt(0);
        this.#fire(key);
      }
    } finally {
      // Also after a callback threw: what is left fires on the next callback.
      const late = this.#late;
      this.#late = null;
      this.#firingAt = -Infinity;
      for (const [key, at] of late) this.#insert(key, at);
      this.#reschedule();
    }
  };

  #reschedule(): void {
    if (this.#late) return; // the firing callback reschedules once it is done
    const next = this.#keys.length ? this.#ats[0]! : Infinity;
    if (next === this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next !== Infinity) this.#timer = this.#clock.setTimeout(this.#tick, Math.min(Math.max(0, next - this.#clock.now()), MAX_TIMER_MS));
  }

  #insert(key: string, at: number): void {
    const i = this.#keys.length;
    if (i === this.#ats.length) {
      const grown = new Float64Array(i * 2);
      grown.set(this.#ats);
      this.#ats = grown;
    }
    this.#keys.push(key);
    this.#ats[i] = at;
    this.#up(i);
  }

  #remove(key: string): void {
    const i = this.#pos.get(key);
    if (i !== undefined) this.#removeAt(i);
  }

  /** Moves the last entry into the hole at `i` and restores the heap order from there. */
  #removeAt(i: number): void {
    const keys = this.#keys;
    this.#pos.delete(keys[i]!);
    const lastKey = keys.pop()!;
    const n = keys.length;
    if (i < n) {
      const lastAt = this.#ats[n]!;
      keys[i] = lastKey;
      this.#ats[i] = lastAt;
      this.#pos.set(lastKey, i);
      if (i > 0 && this.#ats[(i - 1) >> 1]! > lastAt) this.#up(i);
      else this.#down(i);
    }
    // Give memory back once most entries are gone (the arrays only grew to fit a peak).
    if (this.#ats.length > MIN_CAPACITY && n < this.#ats.length >> 2) this.#ats = this.#ats.slice(0, this.#ats.length >> 1);
  }

  /** Sifts the entry at `i` up to its place, moving parents down into the hole. */
  #up(i: number): void {
    const keys = this.#keys;
    const ats = this.#ats;
    const key = keys[i]!;
    const at = ats[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parentAt = ats[p]!;
      if (parentAt <= at) break;
      const parentKey = keys[p]!;
      keys[i] = parentKey;
      ats[i] = parentAt;
      this.#pos.set(parentKey, i);
      i = p;
    }
    keys[i] = key;
    ats[i] = at;
    this.#pos.set(key, i);
  }

  /** Sifts the entry at `i` down to its place, moving the smaller child up into the hole. */
  #down(i: number): void {
    const keys = this.#keys;
    const ats = this.#ats;
    const n = keys.length;
    const key = keys[i]!;
    const at = ats[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && ats[c + 1]! < ats[c]!) c++;
      const childAt = ats[c]!;
      if (childAt >= at) break;
      const childKey = keys[c]!;
      keys[i] = childKey;
      ats[i] = childAt;
      this.#pos.set(childKey, i);
      i = c;
    }
    keys[i] = key;
    ats[i] = at;
    this.#pos.set(key, i);
  }
}
