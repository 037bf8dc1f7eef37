import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SagaLogger } from '../logger.js';
import { parseRecord } from './parse-record.js';
import { summarize, type SagaRecord, type SagaRecordSummary } from './saga-repository.js';

const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
const EXTENSION = '.json';

/**
 * The file name of an execution. Execution ids may come from callers (`run({ uuid })`), so one
 * that could climb out of the directory or name a hidden file is refused before it reaches a path.
 *
 * @example
 * ```ts
 * recordFileName('0190a5c2-7d3e-7000-8000-000000000000'); // '0190a5c2-…-000000000000.json'
 * recordFileName('../etc/passwd'); // RangeError
 * ```
 */
export function recordFileName(uuid: string): string {
  if (typeof uuid !== 'string' || !SAFE_ID.test(uuid) || uuid.includes('..')) {
    throw new RangeError(
      `FileSagaRepository: execution id ${JSON.stringify(uuid)} is not a safe file name. Use 1 to 200 letters, digits, '.', '_' or '-', ` +
        `not starting with '.' and without '..' or path separators (uuid v7, the default, always is).`,
    );
  }
  return uuid + EXTENSION;
}

/**
 * Reads the text of an execution file back into a record, or throws `SagaSnapshotError`
 * (see {@link parseRecord}).
 *
 * @example
 * ```ts
 * const record = parseRecordFile(uuid, await readFile(path, 'utf8'));
 * ```
 */
export function parseRecordFile(uuid: string, text: string): SagaRecord {
  return parseRecord(uuid, text, 'its file');
}

/**
 * Reads every execution file of `dir` into summaries, a few files at a time. A file that cannot
 * be read is logged and reported in `broken` rather than failing the open: one bad execution must
 * not stop all the others from being served and recovered.
 *
 * @example
 * ```ts
 * const { index, broken } = await readRecordIndex(dir, logger);
 * ```
 */
export async function readRecordIndex(dir: string, logger: SagaLogger): Promise<{ index: Map<string, SagaRecordSummary>; broken: Set<string> }> {
  const index = new Map<string, SagaRecordSummary>();
  const broken = new Set<string>();
  const names = (await readdir(dir)).filter((name) => name.endsWith(EXTENSION));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++] as string;
      const uuid = name.slice(0, -EXTENSION.length);
      try {
        recordFileName(uuid);
        index.set(uuid, summarize(parseRecordFile(uuid, await readFile(join(dir, name), 'utf8'))));
      } catch (err) {
        broken.add(uuid);
        logger.warn?.('skipped an execution file that cannot be read; list() and recover() leave it out until it is fixed or deleted', {
          file: join(dir, name),
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
  return { index, broken };
}
