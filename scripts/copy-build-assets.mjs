// After `tsc -p tsconfig.build.json`: copies what the compiler does not emit into dist/src, and
// makes the CLI executable. The dashboard's directory may be missing or empty; .ts sources in it
// are compiled by tsc, not copied.
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = (p) => join(root, 'src', p);
const to = (p) => join(root, 'dist', 'src', p);

mkdirSync(to('repositories/redis'), { recursive: true });
for (const name of readdirSync(from('repositories/redis'))) {
  if (name.endsWith('.lua')) cpSync(from(`repositories/redis/${name}`), to(`repositories/redis/${name}`));
}

if (existsSync(from('admin/dashboard'))) {
  cpSync(from('admin/dashboard'), to('admin/dashboard'), { recursive: true, filter: (src) => !/\.[cm]?ts$/.test(src) });
}

if (existsSync(to('cli/main.js'))) chmodSync(to('cli/main.js'), 0o755);
