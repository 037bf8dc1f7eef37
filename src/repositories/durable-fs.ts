import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Suffix of every temp file; whatever ends in it after a crash is garbage. */
const TEMP_SUFFIX = '.tmp';

/**
 * The `code` of a Node system error (`ENOENT`, `EEXIST`, …), if it has one. File operations race
 * with crashes and other processes, so "not there" and "already there" are outcomes to branch
 * on, not failures.
 *
 * @example
 * ```ts
 * const text = await readFile(path, 'utf8').catch((err) => (errnoOf(err) === 'ENOENT' ? null : Promise.reject(err)));
 * ```
 */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Flushes a directory's entries. A rename or unlink is only durable once the directory that
 * holds the name is synced; syncing the file alone can leave the old name after a power loss.
 *
 * @example
 * ```ts
 * await rename(temp, target);
 * await syncDirectory(dirname(target));
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A fresh temp path beside `target`, in the same directory so that the final rename never
 * crosses a file system (where it would stop being atomic).
 *
 * @example
 * ```ts
 * tempPathFor('/data/executions/abc.json'); // '/data/executions/abc.json.4242.9f3c0a1b2c3d.tmp'
 * ```
 */
export function tempPathFor(target: string): string {
  return `${target}.${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
}

/**
 * Creates `path` (failing if it exists) with `text`, and syncs its data before returning, so that
 * whoever renames or links it afterwards never publishes an empty or partial file.
 *
 * @example
 * ```ts
 * await writeDurable(temp, JSON.stringify(record));
 * ```
 */
export async function writeDurable(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `target` with `text` all at once: a reader, or a restart after `kill -9`, sees the old
 * file or the new one, never a torn one. The caller syncs the directory afterwards (see
 * {@link syncDirectory}); it is left out so that the caller can publish the change in memory
 * first, since from the rename on, the new content is what readers get.
 *
 * @example
 * ```ts
 * await replaceFile(path, json);
 * index.set(uuid, summary);
 * await syncDirectory(dir);
 * ```
 */
export async function replaceFile(target: string, text: string): Promise<void> {
  const temp = tempPathFor(target);
  try {
    await writeDurable(temp, text);
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/**
 * Unlinks a file; `false` when it was not there, so that deleting twice is not an error. The
 * caller syncs the directory, as for {@link replaceFile}.
 *
 * @example
 * ```ts
 * const existed = await removeFile(path);
 * ```
 */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Deletes the temp files a crashed writer left in `dir`, and returns their names. Only safe while
 * holding the directory's lock: no one else may be writing one.
 *
 * @example
 * ```ts
 * const removed = await removeTempFiles(dir); // ['abc.json.4242.9f3c0a1b2c3d.tmp']
 * ```
 */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    if (await removeFile(join(dir, name))) removed.push(name);
  }
  if (removed.length) await syncDirectory(dir);
  return removed;
}
