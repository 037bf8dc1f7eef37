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

/** Deep-copies a JSON-serialisable value, dropping what JSON drops. */
export function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
