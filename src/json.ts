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
    return { code: typeof code === 'string' && code.length <= MAX_CODE ? code : fallbackCode, message: bounded(err.message || err.name) };
  }
  if (typeof err === 'string') return { code: fallbackCode, message: bounded(err) };
  return { code: fallbackCode, message: previewJson(err, MAX_MESSAGE) };
}

/** Errors are stored with their executions: a message is cut at this many characters. */
const MAX_MESSAGE = 2_000;
const MAX_CODE = 100;
const bounded = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text);

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
  if (copy !== NOT_PLAIN) return copy as T;
  if (depthOver(value, MAX_JSON_DEPTH)) {
    // A cycle is also endless depth: let JSON name it ("Converting circular structure…").
    try {
      JSON.stringify(value);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
    throw new TypeError(`the value is nested deeper than ${MAX_JSON_DEPTH} levels; store it flatter (as an array of records, or a string)`);
  }
  return JSON.parse(JSON.stringify(value, refuseCollections)) as T;
}

/** How deep a stored JSON value may nest: deeper would overflow the stack of JSON.stringify later. */
export const MAX_JSON_DEPTH = 256;

/**
 * Whether `value` nests objects or arrays deeper than `limit`, walked without recursion (so it
 * cannot overflow the stack itself); a cycle is endless depth, so it counts as too deep.
 */
export function depthOver(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let budget = 1_000_000; stack.length && budget > 0; budget--) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** JSON would store a Map or a Set as `{}`, silently: refused instead. */
function refuseCollections(this: unknown, key: string, value: unknown): unknown {
  if (value instanceof Map || value instanceof Set) {
    throw new TypeError(`${value instanceof Map ? 'a Map' : 'a Set'} ${key ? `at "${key}" ` : ''}is not JSON (it would be stored as {}); use an object or an array`);
  }
  return value;
}

/**
 * A short, safe rendering of a value for an error message: at most `maxLength` characters, and a
 * placeholder for what is nested too deeply to render or cannot be rendered at all.
 */
export function previewJson(value: unknown, maxLength = 240): string {
  if (depthOver(value, 32)) return '[a value nested deeper than 32 levels]';
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    return `[a value that is not JSON: ${(err as Error).message}]`;
  }
  if (text === undefined) return String(value);
  return text.length > maxLength ? `${text.slice(0, maxLength)}… (${text.length} characters)` : text;
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
