// `npm run bench` (quick) and `npm run bench -- --full`: runs every benchmark in its own process
// (so one's heap and JIT do not colour another's), prints their tables, one JSON line each, and
// writes all figures to bench/results/<date>.json.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false } } });
const full = values.full;

interface Bench {
  name: string;
  script: string;
  args: string[];
}
const BENCHES: Bench[] = [{ name: 'paused-memory', script: 'paused-memory.ts', args: ['--sagas', full ? '100000' : '20000'] }];

function run(bench: Bench): Promise<{ json: Record<string, unknown> | null; code: number }> {
  return new Promise((resolve) => {
    const file = fileURLToPath(new URL(`./${bench.script}`, import.meta.url));
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', file, ...bench.args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      resolve({ json: line ? (JSON.parse(line) as Record<string, unknown>) : null, code: code ?? 1 });
    });
  });
}

const results: Record<string, unknown>[] = [];
let failed = 0;
for (const bench of BENCHES) {
  console.log(`\n== ${bench.name} (${full ? 'full' : 'quick'}) ==`);
  const { json, code } = await run(bench);
  if (json) results.push(json);
  if (code !== 0 || !json) failed++;
}
const date = new Date().toISOString();
mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
const file = fileURLToPath(new URL(`./results/${date.slice(0, 10)}${full ? '-full' : ''}.json`, import.meta.url));
writeFileSync(file, JSON.stringify({ date, full, node: process.version, results }, null, 2) + '\n');
console.log(`\nwrote ${file}`);
if (failed) process.exitCode = 1;
