/**
 * Folders are layers, and nothing imports upward (DESIGN §8): vocabulary (definition, messages,
 * status, errors, util) ← model (machines) ← adapters (repositories, transport, participant) ←
 * runtime ← manager ← operations (admin API, dashboard, metrics, cluster) ← the public index ← the CLI.
 * Type-only imports count too.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The layer of a file: a file may import from its own layer and those below. */
function layerOf(file: string): { rank: number; name: string } {
  if (file.startsWith('src/cli/')) return { rank: 8, name: 'cli' };
  if (file === 'src/index.ts') return { rank: 7, name: 'public API' };
  if (file.startsWith('src/admin/') || file.startsWith('src/cluster/')) return { rank: 6, name: 'operations' };
  if (file.startsWith('src/manager/')) return { rank: 5, name: 'manager' };
  if (file.startsWith('src/runtime/')) return { rank: 4, name: 'runtime' };
  if (/^src\/(repositories|transport|participant)\//.test(file)) return { rank: 3, name: 'adapters' };
  if (file.startsWith('machines/')) return { rank: 2, name: 'model' };
  return { rank: 1, name: 'vocabulary' };
}

describe('layers', () => {
  const sources = [...files('src'), ...files('machines')];

  it('finds the files of every layer', () => {
    const names = new Set(sources.map((f) => layerOf(f).name));
    expect(names).toEqual(new Set(['vocabulary', 'model', 'adapters', 'runtime', 'manager', 'operations', 'public API', 'cli']));
  });

  it('nothing imports from a layer above its own', () => {
    const upward: string[] = [];
    for (const file of sources) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const match of text.matchAll(/^(?:import|export)[^'"]*?from '(\.[^']+)'/gm)) {
        const target = relative(root, resolve(root, dirname(file), match[1]!)).replace(/\.js$/, '.ts');
        const [from, to] = [layerOf(file), layerOf(target)];
        if (to.rank > from.rank) upward.push(`${file} (${from.name}) imports ${target} (${to.name})`);
      }
    }
    expect(upward).toEqual([]);
  });
});
