/**
 * Runs tasks one at a time per key, in the order they were queued; tasks of different keys run
 * concurrently. Every change to one execution (a store, a delivered response, a fired deadline)
 * goes through its key, so versions are stored in order and nothing races.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T> | T): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }

  /** Whether any task of `key` is queued or running. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }

  /** Resolves when every task queued so far has settled. */
  async drain(): Promise<void> {
    while (this.#tails.size) await Promise.all([...this.#tails.values()]);
  }
}
