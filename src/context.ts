import { cloneJson } from './json.js';

const STATE = Symbol('sagachart.context.state');
const METHODS = new Set(['get', 'set', 'has', 'delete', 'keys', 'values', 'entries', 'update', 'pop', 'clear', 'size', 'toJSON']);

/**
 * What a context holds. `data` starts as the object it was made over; while `shared`, it is that
 * object, which the context must not change: the first write copies it (shallowly), and an
 * object-valued key is deep-copied the first time it is read. `exposed` names the keys whose
 * value the handler may hold a reference to (read objects, written values): those are copied
 * again when the data is stored; the others are shared with the data the context was made over.
 */
interface ContextState {
  data: Record<string, unknown>;
  /** `data` is the object the context was made over (copied at the first write). */
  shared: boolean;
  /** Values not exposed yet belong to that object (copied when read). */
  borrowed: boolean;
  exposed: Set<string>;
}

function read(s: ContextState, key: string): unknown {
  const value = s.data[key];
  if (value === null || typeof value !== 'object' || s.exposed.has(key) || !Object.hasOwn(s.data, key)) return value;
  let mine = value;
  if (s.borrowed) {
    materialize(s);
    mine = cloneJson(value);
    s.data[key] = mine;
  }
  s.exposed.add(key);
  return mine;
}

function materialize(s: ContextState): void {
  if (!s.shared) return;
  s.data = Object.assign({}, s.data);
  s.shared = false;
}

function write(s: ContextState, key: string, value: unknown): void {
  materialize(s);
  s.data[key] = value;
  s.exposed.add(key);
}

/** One proxy handler for every context: attribute access reads and writes the data. */
const ATTRIBUTES: ProxyHandler<SagaContextBase<object>> = {
  get(target, prop, receiver) {
    if (typeof prop === 'symbol' || METHODS.has(prop) || prop === 'constructor') {
      return Reflect.get(target, prop, receiver) as unknown;
    }
    return read(target[STATE], prop);
  },
  set(target, prop, value) {
    if (typeof prop === 'symbol') throw new TypeError(`SagaContext keys are strings, not ${String(prop)}.`);
    // A key named like a method is stored, as minos does (`ctx['keys'] = …`); `ctx.keys` stays the
    // method, so such a key is read with `ctx.get('keys')`.
    write(target[STATE], prop, value);
    return true;
  },
  has(target, prop) {
    return typeof prop === 'string' && Object.hasOwn(target[STATE].data, prop);
  },
  deleteProperty(target, prop) {
    if (typeof prop === 'string') target.delete(prop);
    return true;
  },
  ownKeys(target) {
    return Object.keys(target[STATE].data);
  },
  getOwnPropertyDescriptor(target, prop) {
    const s = target[STATE];
    if (typeof prop !== 'string' || !Object.hasOwn(s.data, prop)) return undefined;
    return { value: read(s, prop), writable: true, enumerable: true, configurable: true };
  },
};

class SagaContextBase<T extends object> {
  /** @internal */
  readonly [STATE]: ContextState;

  constructor(data?: T) {
    this[STATE] = { data: data ? cloneJson(data as Record<string, unknown>) : {}, shared: false, borrowed: false, exposed: new Set() };
    return new Proxy(this, ATTRIBUTES as ProxyHandler<this>);
  }

  /** The value stored under `key`, or `fallback` when it is not set. */
  get<K extends keyof T & string>(key: K): T[K];
  get<K extends keyof T & string, D>(key: K, fallback: D): Exclude<T[K], undefined> | D;
  get(key: string, fallback?: unknown): unknown {
    const s = this[STATE];
    return Object.hasOwn(s.data, key) ? read(s, key) : fallback;
  }

  /** Stores `value` under `key` (also reachable as `ctx[key]`). Returns the context. */
  set<K extends keyof T & string>(key: K, value: T[K]): this {
    write(this[STATE], key, value);
    return this;
  }

  /** Whether `key` is set. */
  has(key: string): boolean {
    return Object.hasOwn(this[STATE].data, key);
  }

  /** Removes `key`; returns whether it was set. */
  delete(key: string): boolean {
    const s = this[STATE];
    const had = Object.hasOwn(s.data, key);
    if (!had) return false;
    materialize(s);
    delete s.data[key];
    s.exposed.delete(key);
    return true;
  }

  /** The keys, in insertion order. */
  keys(): string[] {
    return Object.keys(this[STATE].data);
  }

  /** The values, in insertion order. */
  values(): unknown[] {
    const s = this[STATE];
    return Object.keys(s.data).map((key) => read(s, key));
  }

  /** Number of keys set. */
  get size(): number {
    return Object.keys(this[STATE].data).length;
  }

  /** Removes `key` and returns its value, or `fallback` when it was not set. */
  pop<K extends keyof T & string>(key: K): T[K] | undefined;
  pop<K extends keyof T & string, D>(key: K, fallback: D): Exclude<T[K], undefined> | D;
  pop(key: string, fallback?: unknown): unknown {
    const s = this[STATE];
    if (!Object.hasOwn(s.data, key)) return fallback;
    const value = read(s, key);
    this.delete(key);
    return value;
  }

  /** Removes every key. */
  clear(): void {
    const s = this[STATE];
    s.data = {};
    s.shared = false;
    s.borrowed = false;
    s.exposed.clear();
  }

  /** Iterates over the keys, as iterating a Python dict does (minos's `SagaContext` is one). */
  *[Symbol.iterator](): IterableIterator<string> {
    yield* Object.keys(this[STATE].data);
  }

  /** `[key, value]` pairs, in insertion order. */
  entries(): Array<[string, unknown]> {
    const s = this[STATE];
    return Object.keys(s.data).map((key) => [key, read(s, key)]);
  }

  /** Merges `values` into the context. Returns the context. */
  update(values: Partial<T>): this {
    const s = this[STATE];
    for (const key of Object.keys(values)) write(s, key, (values as Record<string, unknown>)[key]);
    return this;
  }

  /** A deep JSON copy of the data: what is stored in the snapshot. */
  toJSON(): T {
    return cloneJson(this[STATE].data) as T;
  }
}

/**
 * A context over `data` without copying it first: what handlers get. `data` is not changed (the
 * first write copies it, reading an object copies that object), and {@link storedDataOf} shares
 * with it whatever the handler never touched.
 * @internal
 */
export function contextOver<T extends object>(data: T): SagaContext<T> {
  const ctx = new SagaContextBase<T>();
  ctx[STATE].data = data as Record<string, unknown>;
  ctx[STATE].shared = true;
  ctx[STATE].borrowed = true;
  return ctx as SagaContext<T>;
}

/**
 * The data of a context as it is stored: a JSON copy of what the handler read or wrote (as
 * `JSON.stringify` would make it: a `Date` becomes a string, `undefined` and functions are
 * dropped; a BigInt or a cycle throws), sharing the values it never touched.
 * @internal
 */
export function storedDataOf(ctx: SagaContext<object>): Record<string, unknown> {
  const s = (ctx as unknown as SagaContextBase<object>)[STATE];
  if (s.shared) return s.data;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(s.data)) {
    let value = s.data[key];
    if (s.exposed.has(key)) {
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
      try {
        value = cloneJson(value);
      } catch (err) {
        throw new TypeError(`"${key}": ${(err as Error).message}`, { cause: err });
      }
    }
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}

/**
 * The data of one saga execution, passed to every handler. Read and write it as attributes
 * (`ctx.orderId`, `ctx['orderId']`) or as a map (`get(key, fallback)`, `set`, `has`, `delete`,
 * `pop(key, fallback)`, `clear`, `keys`, `values`, `entries`, `update`, `size`, iteration over
 * the keys). A key named like a method (`keys`, `size`…) is read and written with `get`/`set`. It must stay JSON-serialisable: it is stored in the execution's snapshot,
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
