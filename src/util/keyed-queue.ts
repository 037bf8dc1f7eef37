/**
 * Runs tasks one at a time per key, in the order they were queued; tasks of different keys run
 * concurrently. Every change to one execution (a store, a delivered response, a fired deadline)
 * goes through its key, so versions are stored in order and nothing races. A task queued on an
 * idle key starts at once, in the caller's turn; the next task of a key starts when the one
 * before it settles.
 *
 * @example
 * ```ts
 * const queue = new KeyedQueue();
 * void queue.run('u1', async () => store(1));
 * void queue.run('u1', async () => store(2)); // starts once store(1) has settled
 * ```
 */
export class KeyedQueue {
  /** Per busy key, the tasks waiting behind the running one. */
  readonly #waiting = new Map<string, Array<() => void>>();
  #drained: Array<() => void> = [];

  run<T>(key: string, task: () => Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        let result: Promise<T> | T;
        try {
          result = task();
        } catch (err) {
          reject(err);
          queueMicrotask(() => this.#next(key));
          return;
        }
        if (result instanceof Promise) {
          result.then(
            (value) => {
              resolve(value);
              this.#next(key);
            },
            (err: unknown) => {
              reject(err);
              this.#next(key);
            },
          );
        } else {
          resolve(result);
          // A microtask later: a long queue of synchronous tasks must not grow the stack.
          queueMicrotask(() => this.#next(key));
        }
      };
      const waiting = this.#waiting.get(key);
      if (waiting) waiting.push(start);
      else {
        this.#waiting.set(key, []);
        start();
      }
    });
  }

  /** Whether any task of `key` is queued or running. */
  busy(key: string): boolean {
    return this.#waiting.has(key);
  }

  /** Resolves when every task queued so far (and any they queue) has settled. */
  drain(): Promise<void> {
    if (!this.#waiting.size) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #next(key: string): void {
    const waiting = this.#waiting.get(key);
    const next = waiting?.shift();
    if (next) {
      next();
      return;
    }
    this.#waiting.delete(key);
    if (!this.#waiting.size && this.#drained.length) {
      const drained = this.#drained;
      this.#drained = [];
      for (const resolve of drained) resolve();
    }
  }
}
