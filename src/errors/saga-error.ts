/**
 * Base class of every error sagachart throws or records.
 *
 * Each subclass has a stable {@link SagaError.code} that programs can switch on and that the
 * README lists; the message names the bad value and what to do about it.
 *
 * @example
 * ```ts
 * try {
 *   await manager.run(saga);
 * } catch (err) {
 *   if (err instanceof SagaError && err.code === 'SAGA_FAILED_EXECUTION') retryLater();
 * }
 * ```
 */
export class SagaError extends Error {
  /** Stable machine-readable code, e.g. `SAGA_NOT_COMMITTED`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The JSON form stored in snapshots: an `Error` itself serialises as `{}`. */
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
