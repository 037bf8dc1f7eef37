/** The exit codes of the `sagachart` command, one per kind of failure a script may tell apart. */
export const ExitCode = {
  Ok: 0,
  /** The admin API refused (its `code` and message are printed). */
  Refused: 1,
  /** A wrong command line: unknown command or option, a bad value, a module with no saga. */
  Usage: 2,
  /** The server could not be reached (or did not answer in time). */
  Unreachable: 3,
  /** The admin API answered 401: no token, or the wrong one. */
  Unauthorized: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A failure the CLI reports as one line on stderr and its exit code; `code` is the admin API's
 * error code when it answered one.
 *
 * @example
 * ```ts
 * throw new CliError(ExitCode.Usage, '--limit must be a whole number from 1 to 1000, not "x"');
 * ```
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (exit code 2). */
export const usage = (message: string): CliError => new CliError(ExitCode.Usage, message);
