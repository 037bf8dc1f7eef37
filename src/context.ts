import { cloneJson } from './json.js';

const DATA = Symbol('sagachart.context.data');
const METHODS = new Set(['get', 'set', 'has', 'delete', 'keys', 'entries', 'update', 'toJSON']);

/** One proxy handler for every context: attribute access reads and writes the data. */
const ATTRIBUTES: ProxyHandler<SagaContextBase<object>> = {
  get(target, prop, receiver) {
    if (typeof prop === 'symbol' || METHODS.has(prop) || prop === 'constructor') {
      return Reflect.get(target, prop, receiver) as unknown;
    }
    return target[DATA][prop];
  },
  set(target, prop, value) {
    if (typeof prop === 'symbol' || METHODS.has(prop)) {
      throw new TypeError(`SagaContext key "${String(prop)}" is a method name; use ctx.set(${JSON.stringify(String(prop))}, value).`);
    }
    target[DATA][prop] = value;
    return true;
  },
  has(target, prop) {
    return typeof prop === 'string' && Object.hasOwn(target[DATA], prop);
  },
  deleteProperty(target, prop) {
    if (typeof prop === 'string') delete target[DATA][prop];
    return true;
  },
  ownKeys(target) {
    return Object.keys(target[DATA]);
  },
  getOwnPropertyDescriptor(target, prop) {
    if (typeof prop !== 'string' || !Object.hasOwn(target[DATA], prop)) return undefined;
    return { value: target[DATA][prop], writable: true, enumerable: true, configurable: true };
  },
};

class SagaContextBase<T extends object> {
  /** @internal */
  readonly [DATA]: Record<string, unknown>;

  constructor(data?: T) {
    this[DATA] = data ? cloneJson(data as Record<string, unknown>) : {};
    return new Proxy(this, ATTRIBUTES as ProxyHandler<this>);
  }

  /** The value stored under `key`. */
  get<K extends keyof T & string>(key: K): T[K] {
    return this[DATA][key] as T[K];
  }

  /** Stores `value` under `key` (also reachable as `ctx[key]`). Returns the context. */
  set<K extends keyof T & string>(key: K, value: T[K]): this {
    this[DATA][key] = value;
    return this;
  }

  /** Whether `key` is set. */
  has(key: string): boolean {
    return Object.hasOwn(this[DATA], key);
  }

  /** Removes `key`; returns whether it was set. */
  delete(key: string): boolean {
    const had = Object.hasOwn(this[DATA], key);
    delete this[DATA][key];
    return had;
  }

  /** The keys, in insertion order. */
  keys(): string[] {
    return Object.keys(this[DATA]);
  }

  /** `[key, value]` pairs, in insertion order. */
  entries(): Array<[string, unknown]> {
    return Object.entries(this[DATA]);
  }

  /** Merges `values` into the context. Returns the context. */
  update(values: Partial<T>): this {
    Object.assign(this[DATA], values);
    return this;
  }

  /** A deep JSON copy of the data: what is stored in the snapshot. */
  toJSON(): T {
    return cloneJson(this[DATA]) as T;
  }
}

/**
 * The data of one saga execution, passed to every handler. Read and write it as attributes
 * (`ctx.orderId`, `ctx['orderId']`) or as a map (`get`, `set`, `has`, `delete`, `keys`,
 * `entries`, `update`). It must stay JSON-serialisable: it is stored in the execution's snapshot,
 * so a `Date` comes back as a string and a `Map` or class instance loses its type.
 *
 * @example
 * ```ts
 * const ctx = new SagaContext({ orderId: 'o-1' });
 * ctx.total = 42;
 * ctx.set('currency', 'EUR');
 * JSON.stringify(ctx); // {"orderId":"o-1","total":42,"currency":"EUR"}
 * ```
 */
export type SagaContext<T extends object = Record<string, unknown>> = SagaContextBase<T> & T;

/** Constructor of {@link SagaContext}; `instanceof SagaContext` works. */
export const SagaContext = SagaContextBase as unknown as {
  new <T extends object = Record<string, unknown>>(data?: T): SagaContext<T>;
  readonly prototype: SagaContextBase<object>;
};
