/** A JSON value: what a snapshot, a context and a wire message may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** `{ code, message }`: how errors are stored (an `Error` serialises as `{}`). */
export interface ErrorInfo {
  code: string;
  message: string;
}

/**
 * Turns anything thrown or returned as a failure into `{ code, message }`. A `code` property that
 * is a string is kept (SagaError, Node system errors); anything else gets `fallbackCode`.
 */
export function toErrorInfo(err: unknown, fallbackCode: string): ErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : fallbackCode, message: err.message || err.name };
  }
  if (typeof err === 'string') return { code: fallbackCode, message: err };
  try {
    return { code: fallbackCode, message: JSON.stringify(err) ?? String(err) };
  } catch {
    return { code: fallbackCode, message: String(err) };
  }
}

/**
 * Deep-copies a JSON-serialisable value, exactly as `JSON.parse(JSON.stringify(value))` would.
 * A plain tree (plain objects and arrays of strings, finite numbers, booleans and null) is copied
 * directly, sharing its strings; anything else in it (a `toJSON`, `undefined`, a function, a
 * class instance, a non-finite number, an array hole, a `__proto__` key, a tree deeper than
 * {@link PLAIN_DEPTH} or a cycle) sends the whole value through the JSON round trip, so the result
 * and the errors are JSON's own. Every handler's context is copied in and out, so this is hot.
 */
export function cloneJson<T>(value: T): T {
  if (value === undefined) return value;
  const copy = copyPlain(value, 0);
  return (copy === NOT_PLAIN ? JSON.parse(JSON.stringify(value)) : copy) as T;
}

const NOT_PLAIN: unique symbol = Symbol('not plain JSON');
/** Deeper trees, and cycles, take the JSON round trip (which throws on a cycle). */
const PLAIN_DEPTH = 64;

function copyPlain(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      if (depth >= PLAIN_DEPTH || typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
      if (Array.isArray(value)) {
        const out: unknown[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return NOT_PLAIN;
          const item = copyPlain(value[i], depth + 1);
          if (item === NOT_PLAIN) return NOT_PLAIN;
          out[i] = item;
        }
        return out;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (key === '__proto__') return NOT_PLAIN;
        const item = copyPlain((value as Record<string, unknown>)[key], depth + 1);
        if (item === NOT_PLAIN) return NOT_PLAIN;
        out[key] = item;
      }
      return out;
    }
    default:
      return NOT_PLAIN;
  }
}
