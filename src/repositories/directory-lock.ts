import { randomBytes } from 'node:crypto';
import { link, open, readFile, readlink, realpath, rename, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../clock.js';
import { SagaRepositoryLockLostError } from '../errors/saga-repository-lock-lost-error.js';
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

/** How a {@link DirectoryLock} is kept. */
export interface DirectoryLockOptions {
  /** Told about stale locks taken over, late refreshes and a lost lock. */
  logger: SagaLogger;
  /** Its time is what the owner writes into the LOCK's mtime, and what a LOCK's age is measured against. */
  clock: Clock;
  /** How often the owner refreshes the LOCK's mtime, in ms. */
  refreshMs: number;
  /** A LOCK not refreshed for longer than this (ms) is taken over. */
  staleMs: number;
}

/** What a LOCK file says about its owner. */
interface LockHolder {
  /** The owner's random token; `null` in a LOCK of an older sagachart (a bare pid) or a file that is not a lock. */
  token: string | null;
  pid: number | null;
  host: string | null;
  /** Boot id and pid namespace of the owner: where its pid means something. */
  machine: string | null;
  /** The LOCK's mtime, which its owner keeps refreshing. */
  refreshedAt: number;
  /** The file's text, to tell one LOCK from the next. */
  text: string;
}

/**
 * This kernel's boot id and this process's pid namespace: two processes with the same identity
 * see the same pids, so a pid in a LOCK written under our identity can be checked with
 * `kill(pid, 0)`. `null` where it cannot be known (not Linux, no /proc): then only the heartbeat
 * decides. Containers on one host share the boot id but not the pid namespace.
 */
const MACHINE: Promise<string | null> = (async () => {
  try {
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const namespace = await readlink('/proc/self/ns/pid');
    return boot && namespace ? `${boot}/${namespace}` : null;
  } catch {
    return null;
  }
})();

/** Whether `pid` names a live process other than this one (only meaningful under our own identity). */
function isLive(pid: number): boolean {
  // Our own pid in a LOCK we do not hold was written by an earlier process that had the same pid.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM'; // alive, but another user's
  }
}

/** The LOCK at `path`, or `undefined` when there is none. Text and mtime come from one open file. */
async function readHolder(path: string): Promise<LockHolder | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const [stat, text] = [await handle.stat(), await handle.readFile('utf8')];
    return { ...parseHolder(text), refreshedAt: stat.mtimeMs, text };
  } finally {
    await handle.close();
  }
}

function parseHolder(text: string): Omit<LockHolder, 'refreshedAt' | 'text'> {
  const none = { token: null, pid: null, host: null, machine: null };
  const trimmed = text.trim();
  const pidOf = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : null);
  if (/^\d+$/.test(trimmed)) return { ...none, pid: pidOf(Number(trimmed)) };
  try {
    const v = JSON.parse(trimmed) as Record<string, unknown>;
    const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
    return { token: str(v.token), pid: pidOf(v.pid), host: str(v.host), machine: str(v.machine) };
  } catch {
    return none;
  }
}

/**
 * Why a LOCK may be taken over, or `null` when its owner must be taken to be alive. The rule is
 * the heartbeat: a LOCK not refreshed for `staleMs` is stale, wherever its owner runs. A pid is
 * only trusted where it means something: under our own boot id and pid namespace a dead pid frees
 * the LOCK at once (a restart after `kill -9`), and a bare pid of an older sagachart that is alive
 * here keeps it (that version never refreshes).
 */
function staleReason(holder: LockHolder, now: number, staleMs: number, here: string | null): string | null {
  if (holder.token === null && holder.pid !== null && isLive(holder.pid)) return null;
  const age = now - holder.refreshedAt;
  if (age > staleMs) return `not refreshed for ${Math.round(age)} ms (lockStaleMs is ${staleMs})`;
  if (holder.pid !== null && here !== null && holder.machine === here && !isLive(holder.pid)) return `its process ${holder.pid} on this machine is gone`;
  return null;
}

const holderInfo = (h: LockHolder | undefined) => (h ? { pid: h.pid, host: h.host } : null);

/**
 * Exclusive ownership of a directory by one process, through a `LOCK` file that holds across
 * hosts and pid namespaces (containers sharing a volume, all pid 1): the owner's random token,
 * pid, host and machine identity, and a heartbeat, the file's mtime, which the owner sets to its
 * clock's time every `refreshMs`. Another process takes the LOCK over only when it was not
 * refreshed for `staleMs` (or, on the same machine and pid namespace, when its pid is gone, so a
 * restart after `kill -9` need not wait). Clocks of hosts sharing a directory must agree to well
 * within `staleMs - refreshMs`.
 *
 * The LOCK is made by hard-linking a fully written and synced temp file to `LOCK`: like `O_EXCL`,
 * `link` fails if the name exists, and no crash can leave an empty `LOCK` that names nobody. A
 * stale `LOCK` is first renamed aside, so that of two processes taking it over at once only one
 * wins. Before each refresh and each write ({@link DirectoryLock.assertHeld}) the owner checks
 * that the LOCK still holds its token: an owner whose lock was taken over (it stalled longer than
 * `staleMs`) finds out, and writes nothing more over the new owner's files.
 *
 * @example
 * ```ts
 * const lock = await DirectoryLock.acquire('/var/lib/orders', { logger, clock: systemClock, refreshMs: 2_000, staleMs: 15_000 });
 * try { await lock.assertHeld(); … } finally { await lock.release(); }
 * ```
 */
export class DirectoryLock {
  readonly #dir: string;
  readonly #shown: string;
  readonly #token: string;
  readonly #options: DirectoryLockOptions;
  #timer: TimerHandle | undefined;
  #refreshing: Promise<void> | undefined;
  #checking: Promise<unknown> | undefined;
  #lost: SagaRepositoryLockLostError | undefined;
  #released = false;

  private constructor(dir: string, shown: string, token: string, options: DirectoryLockOptions) {
    this.#dir = dir;
    this.#shown = shown;
    this.#token = token;
    this.#options = options;
  }

  /** Takes the lock of an existing directory and starts refreshing it, or throws `SagaRepositoryLockedError`. */
  static async acquire(dir: string, options: DirectoryLockOptions): Promise<DirectoryLock> {
    const real = await realpath(dir);
    // Checked and reserved with no await in between: two open() calls of this process cannot both pass.
    if (HELD.has(real)) throw new SagaRepositoryLockedError(dir, process.pid);
    HELD.add(real);
    try {
      const token = randomBytes(16).toString('hex');
      const machine = await MACHINE;
      const text = `${JSON.stringify({ token, pid: process.pid, host: hostname(), machine, since: options.clock.now() })}\n`;
      await take(real, dir, text, machine, options);
      const lock = new DirectoryLock(real, dir, token, options);
      lock.#arm();
      return lock;
    } catch (err) {
      HELD.delete(real);
      throw err;
    }
  }

  /** Whether another process took the lock over (every write is refused from then on). */
  get lost(): boolean {
    return this.#lost !== undefined;
  }

  /**
   * Resolves while the LOCK still holds this owner's token; throws `SagaRepositoryLockLostError`
   * once it does not. Called before every write. Calls made while a check is under way share it.
   */
  async assertHeld(): Promise<void> {
    if (this.#lost) throw this.#lost;
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    await this.#checking;
    if (this.#lost) throw this.#lost;
  }

  /** Stops refreshing and removes `LOCK` if it is still this owner's; another process may open the directory from then on. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#refreshing?.catch(() => undefined);
    await this.#checking?.catch(() => undefined);
    try {
      if (this.#lost) return;
      const holder = await readHolder(this.#path);
      if (holder?.token !== this.#token) return this.#lose(holder);
      await unlink(this.#path).catch((err: unknown) => {
        if (errnoOf(err) !== 'ENOENT') throw err;
      });
      await syncDirectory(this.#dir);
    } finally {
      HELD.delete(this.#dir);
    }
  }

  get #path(): string {
    return join(this.#dir, LOCK_FILE);
  }

  async #check(): Promise<LockHolder | undefined> {
    const holder = await readHolder(this.#path);
    if (holder?.token !== this.#token) this.#lose(holder);
    return holder;
  }

  #lose(holder: LockHolder | undefined): void {
    if (this.#lost) return;
    this.#lost = new SagaRepositoryLockLostError(this.#shown, holderInfo(holder));
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#options.logger.error?.(this.#lost.message, { dir: this.#shown, holder: holderInfo(holder) });
  }

  /** One timer after each refresh (never an interval), so that a slow refresh never overlaps the next. */
  #arm(): void {
    if (this.#released || this.#lost) return;
    const handle = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      const refreshing = this.#refresh()
        .catch((err: unknown) => {
          this.#options.logger.warn?.('could not refresh the directory lock; trying again', { dir: this.#shown, error: String(err) });
        })
        .finally(() => {
          if (this.#refreshing === refreshing) this.#refreshing = undefined;
          this.#arm();
        });
      this.#refreshing = refreshing;
    }, this.#options.refreshMs);
    // The heartbeat must not keep alive a process that has nothing else to do.
    (handle as { unref?: () => unknown } | null)?.unref?.();
    this.#timer = handle;
  }

  async #refresh(): Promise<void> {
    const holder = await this.#check();
    if (!holder || this.#lost || this.#released) return;
    const now = this.#options.clock.now();
    const age = now - holder.refreshedAt;
    if (age > this.#options.staleMs) {
      this.#options.logger.warn?.('the directory lock went unrefreshed for longer than lockStaleMs (was the process stalled?); another process could have taken it over', {
        dir: this.#shown,
        ageMs: Math.round(age),
      });
    }
    const at = new Date(now);
    await utimes(this.#path, at, at);
  }
}

async function take(dir: string, shown: string, text: string, machine: string | null, options: DirectoryLockOptions): Promise<void> {
  const { clock, staleMs, logger } = options;
  const lockPath = join(dir, LOCK_FILE);
  const mine = tempPathFor(lockPath);
  const publish = async () => {
    await writeDurable(mine, text);
    const at = new Date(clock.now());
    await utimes(mine, at, at);
  };
  await publish();
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
          await unlink(mine).catch(() => undefined);
          await publish().catch(() => undefined);
          continue;
        }
      }
      const holder = await readHolder(lockPath);
      if (holder === undefined) continue; // released meanwhile
      const reason = staleReason(holder, clock.now(), staleMs, machine);
      if (reason === null) throw new SagaRepositoryLockedError(shown, holder.pid ?? 0);
      const aside = tempPathFor(`${lockPath}.stale`);
      try {
        await rename(lockPath, aside);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') continue; // another process took it over first
        throw err;
      }
      const moved = await readHolder(aside);
      if (moved !== undefined && (moved.text !== holder.text || staleReason(moved, clock.now(), staleMs, machine) === null)) {
        // Between our read and the rename, another process took the stale lock over, or its
        // owner refreshed it: give it back.
        await link(aside, lockPath).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw new SagaRepositoryLockedError(shown, moved.pid ?? 0);
      }
      await unlink(aside).catch(() => undefined);
      logger.warn?.('took over the directory lock of a process that is gone or stopped refreshing it', { dir: shown, pid: holder.pid, host: holder.host, reason });
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
