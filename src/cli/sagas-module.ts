import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Saga } from '../index.js';
import { usage } from './cli-error.js';

/** A saga found in the user's module, and the export it came from. */
export interface ExportedSaga {
  exportName: string;
  saga: Saga<object>;
}

/**
 * Whether `value` is a committed saga definition. Told by its shape rather than `instanceof`: the
 * user's module may import a copy of sagachart other than the one the CLI runs from.
 */
export function isCommittedSaga(value: unknown): value is Saga<object> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { name?: unknown; committed?: unknown; hash?: unknown; steps?: unknown };
  // `committed` first: an uncommitted saga has no hash to read.
  return v.committed === true && typeof v.name === 'string' && typeof v.hash === 'string' && Array.isArray(v.steps);
}

/**
 * Imports the ES module at `path` (relative to the working directory) and returns every committed
 * saga it exports, by default or by name, alone or in an array; each saga once.
 */
export async function loadSagas(path: string): Promise<ExportedSaga[]> {
  const file = resolve(process.cwd(), path);
  if (!existsSync(file)) throw usage(`no sagas module at ${file}; pass the path of an ES module that exports your committed sagas`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw usage(importFailure(file, err));
  }
  const found: ExportedSaga[] = [];
  const seen = new Set<unknown>();
  for (const [exportName, value] of Object.entries(mod)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if (!isCommittedSaga(candidate) || seen.has(candidate)) continue;
      seen.add(candidate);
      found.push({ exportName, saga: candidate });
    }
  }
  if (!found.length) {
    const names = Object.keys(mod);
    throw usage(
      `${file} exports no committed saga (its exports: ${names.length ? names.join(', ') : 'none'}). ` +
        'Export each saga after .commit(), by name, as the default export, or in an array.',
    );
  }
  return found;
}

function importFailure(file: string, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (/\.[cm]?ts$/.test(file) && (code === 'ERR_UNKNOWN_FILE_EXTENSION' || /Unknown file extension|Unexpected token|SyntaxError/.test(message))) {
    return (
      `Node cannot load the TypeScript module ${file} (${message.split('\n')[0]}). ` +
      "Run the CLI with tsx loaded (NODE_OPTIONS='--import tsx' npx sagachart ..., or node --import tsx node_modules/.bin/sagachart ...), " +
      'or compile the module first and pass the .js file.'
    );
  }
  return `could not import the sagas module ${file}: ${message}`;
}
