import { link, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SagaRepositoryLockedError } from '../errors/saga-repository-locked-error.js';
import type { SagaLogger } from '../logger.js';
import { errnoOf, syncDirectory, tempPathFor, writeDurable } from './durable-fs.js';

/** Name of the lock file in a repository directory. */
const LOCK_FILE = 'LOCK';

/**
 * Directories locked by this process. On `globalThis`, so that two copies of this module (an ESM
 * and a CJS build, or a bundler's duplicate) still see each other's locks.
 */
const HELD: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('sagachart.directoryLocks')] ??= new Set<string>()) as Set<string>;

/** Whether `pid` names a live process other than this one. */
function isLive(pid: number): boolean {
  // Our own pid in a LOCK we do not hold was written by an earlier process that had the same pid:
  // common in containers, where the server is pid 1 after every restart.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM'; // alive, but another user's
  }
}

/** The pid in a lock file: `undefined` when there is no file, `null` when it holds no valid pid. */
async function readPid(path: string): Promise<number | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(text.trim());
  return /^\d+$/.test(text.trim()) && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Exclusive ownership of a directory by one process, through a `LOCK` file holding its pid.
 *
 * The lock is made by hard-linking a fully written and synced temp file to `LOCK`: like `O_EXCL`,
 * `link` fails if the name exists, and unlike `open` + `write`, no crash can leave an empty `LOCK`
 * that names nobody. A `LOCK` whose process is gone (`kill -9`, power loss) is taken over; it is
 * first renamed aside, so that of two processes taking it over at once only one wins.
 *
 * @example
 * ```ts
 * const lock = await DirectoryLock.acquire('/var/lib/orders', logger); // SagaRepositoryLockedError if held
 * try { … } finally { await lock.release(); }
 * ```
 */
export class DirectoryLock {
  readonly #dir: string;
  #released = false;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** Takes the lock of an existing directory, or throws `SagaRepositoryLockedError`. */
  static async acquire(dir: string, logger: SagaLogger): Promise<DirectoryLock> {
    const real = await realpath(dir);
    // Checked and reserved with no await in between: two open() calls of this process cannot both pass.
    if (HELD.has(real)) throw new SagaRepositoryLockedError(dir, process.pid);
    HELD.add(real);
    try {
      await take(real, dir, logger);
    } catch (err) {
      HELD.delete(real);
      throw err;
    }
    return new DirectoryLock(real);
  }

  /** Removes `LOCK`; another process may open the directory from then on. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      await unlink(join(this.#dir, LOCK_FILE)).catch((err: unknown) => {
        if (errnoOf(err) !== 'ENOENT') throw err;
      });
      await syncDirectory(this.#dir);
    } finally {
      HELD.delete(this.#dir);
    }
  }
}

async function take(dir: string, shown: string, logger: SagaLogger): Promise<void> {
  const lockPath = join(dir, LOCK_FILE);
  const mine = tempPathFor(lockPath);
  await writeDurable(mine, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(mine, lockPath);
        await syncDirectory(dir);
        return;
      } catch (err) {
        const code = errnoOf(err);
        if (attempt >= 5 || (code !== 'EEXIST' && code !== 'ENOENT')) throw err;
        // ENOENT: our temp file was swept as a crash leftover by the process holding the lock.
        if (code === 'ENOENT') {
          await writeDurable(mine, `${process.pid}\n`).catch(() => undefined);
          continue;
        }
      }
      const holder = await readPid(lockPath);
      if (holder === undefined) continue; // released meanwhile
      if (holder !== null && isLive(holder)) throw new SagaRepositoryLockedError(shown, holder);
      const aside = tempPathFor(`${lockPath}.stale`);
      try {
        await rename(lockPath, aside);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') continue; // another process took it over first
        throw err;
      }
      const moved = await readPid(aside);
      if (moved !== holder && typeof moved === 'number' && isLive(moved)) {
        // Between our read and the rename, another process took the stale lock over: give it back.
        await link(aside, lockPath).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw new SagaRepositoryLockedError(shown, moved);
      }
      await unlink(aside);
      logger.warn?.('took over the lock of a process that is gone (it crashed or was killed)', { dir: shown, pid: holder });
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
