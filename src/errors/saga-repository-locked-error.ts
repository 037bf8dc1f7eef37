import { SagaError } from './saga-error.js';

/**
 * A `FileSagaRepository` directory is owned by another live process. Two processes writing one
 * directory would each trust their own in-memory index and overwrite each other's versions, so
 * the second `open()` is refused instead of corrupting executions later.
 *
 * @example
 * ```ts
 * try {
 *   await FileSagaRepository.open({ dir: './data' });
 * } catch (err) {
 *   if (err instanceof SagaRepositoryLockedError) console.error(`already served by pid ${err.pid}`);
 * }
 * ```
 */
export class SagaRepositoryLockedError extends SagaError {
  /** The repository directory. */
  readonly dir: string;
  /** The process named by the directory's `LOCK` file. */
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(
      'SAGA_REPOSITORY_LOCKED',
      `Directory '${dir}' is in use by process ${pid} (named in '${dir}/LOCK'): a FileSagaRepository owns its directory alone. ` +
        `Close the repository in that process first, or give this one another dir; if process ${pid} is not a sagachart process ` +
        `(its pid was reused after a crash), delete '${dir}/LOCK' and open again.`,
    );
    this.dir = dir;
    this.pid = pid;
  }
}
