import { SagaError } from './saga-error.js';

/**
 * A `FileSagaRepository` found that its directory's `LOCK` is no longer its own: it was not
 * refreshed for `lockStaleMs` (a blocked event loop, a suspended VM or container, a clock jump,
 * a lost network file system), so another process took the directory over. From then on the
 * repository refuses every write, so that it never overwrites the new owner's executions.
 *
 * @example
 * ```ts
 * try {
 *   await repository.store(record, 3);
 * } catch (err) {
 *   if (err instanceof SagaRepositoryLockLostError) process.exit(1); // let the new owner carry on
 * }
 * ```
 */
export class SagaRepositoryLockLostError extends SagaError {
  /** The repository directory. */
  readonly dir: string;
  /** What the directory's `LOCK` names now, when it names anyone: the process that took it over. */
  readonly holder: { pid: number | null; host: string | null } | null;
  constructor(dir: string, holder: { pid: number | null; host: string | null } | null) {
    const now = holder ? `it now names process ${holder.pid ?? '?'}${holder.host ? ` on host '${holder.host}'` : ''}` : 'it is gone';
    super(
      'SAGA_REPOSITORY_LOCK_LOST',
      `This FileSagaRepository no longer owns directory '${dir}': ${now} ('${dir}/LOCK' was not refreshed within lockStaleMs, so another process took it over). ` +
        `Nothing more is written through this repository; close it and let the new owner carry on, and find out what kept this process from refreshing the lock ` +
        `(a blocked event loop, a suspended host, a clock jump) or raise lockStaleMs.`,
    );
    this.dir = dir;
    this.holder = holder;
  }
}
