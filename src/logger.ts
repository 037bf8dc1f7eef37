/** Structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/**
 * Where sagachart logs. Every method is optional; pass `console` to see everything, or adapt
 * pino/winston in one line each.
 *
 * @example
 * ```ts
 * new SagaManager({ logger: { warn: (msg, f) => pino.warn(f, msg), error: (msg, f) => pino.error(f, msg) } });
 * ```
 */
export interface SagaLogger {
  debug?(message: string, fields?: LogFields): void;
  info?(message: string, fields?: LogFields): void;
  warn?(message: string, fields?: LogFields): void;
  error?(message: string, fields?: LogFields): void;
}

/** The default: warnings and errors to stderr, the rest dropped. */
export const defaultLogger: SagaLogger = {
  warn: (message, fields) => console.warn(`[sagachart] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[sagachart] ${message}`, fields ?? ''),
};
