// `npm run bench` (quick: concurrency 64, 10% failing, a few seconds per contender) and
// `npm run bench -- --full` (concurrency 1, 64 and 512, with 10% and 0% failing, median of 3).
// `--concurrency 1,512` picks the in-flight levels, `--only floor-redis,sagachart` the contenders
// and extras whose names start so (the others are skipped; `npm run bench -- cluster` is the same
// as `--only cluster`), `--repeats N` the repeats.
// Every contender runs in its own process with its own participant process, in one run, on the
// same workload (bench/lib/workload.ts). Prints a table, one JSON line per run, and writes
// bench/results/<date>[-full][-<only>].json and .md (the README's tables are copied from the .md).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

const { values, positionals } = parseArgs({
  options: { full: { type: 'boolean', default: false }, only: { type: 'string' }, concurrency: { type: 'string' }, repeats: { type: 'string' } },
  allowPositionals: true,
});
const only = [...(values.only?.split(',') ?? []), ...positionals].map((p) => p.trim()).filter(Boolean);
const picked = (name: string) => !only.length || only.some((p) => name.startsWith(p));
const full = values.full;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

interface Contender {
  name: string;
  script: string;
  variant: string;
  /** Sagas per measured run at concurrency 64 (scaled for 1 and 512). */
  sagas: number;
}
const CONTENDERS: Contender[] = [
  // Sized so that each measured run lasts a few seconds on this class of machine: a run of well
  // under a second measures the JIT warming up rather than the contender.
  { name: 'floor-ws', script: 'floor.ts', variant: 'ws', sagas: 30000 },
  { name: 'floor-redis', script: 'floor.ts', variant: 'redis', sagas: 20000 },
  { name: 'xstate-floor-ws', script: 'xstate-floor.ts', variant: 'ws', sagas: 10000 },
  { name: 'xstate-floor-redis', script: 'xstate-floor.ts', variant: 'redis', sagas: 8000 },
  { name: 'sagachart-memory', script: 'sagachart.ts', variant: 'memory', sagas: 20000 },
  { name: 'sagachart-redis', script: 'sagachart.ts', variant: 'redis', sagas: 10000 },
  { name: 'sagachart-redis-aof', script: 'sagachart.ts', variant: 'redis-aof', sagas: 10000 },
  // The same sagas with their two-phase commit (two more round trips each): what the commit costs.
  { name: 'sagachart-2pc-memory', script: 'sagachart.ts', variant: 'memory-2pc', sagas: 12000 },
  { name: 'sagachart-2pc-redis', script: 'sagachart.ts', variant: 'redis-2pc', sagas: 6000 },
  { name: 'bullmq', script: 'bullmq.ts', variant: '', sagas: 4000 },
  { name: 'restate', script: 'restate.ts', variant: '', sagas: 1500 },
].filter((c) => existsSync(here(`./contenders/${c.script}`)) && picked(c.name));

interface Run {
  contender: Contender;
  concurrency: number;
  failRate: number;
}
const matrix: Run[] = [];
const list = (text: string, what: string) =>
  text.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${what} takes whole numbers >= 1 separated by commas, got ${JSON.stringify(text)}`);
    return n;
  });
const concurrencies = values.concurrency ? list(values.concurrency, 'concurrency') : full ? [1, 64, 512] : [64];
const failRates = full ? [0.1, 0] : [0.1];
const repeats = values.repeats ? list(values.repeats, 'repeats')[0]! : full ? 3 : 1;
for (const failRate of failRates) for (const concurrency of concurrencies) for (const contender of CONTENDERS) for (let r = 0; r < repeats; r++) matrix.push({ contender, concurrency, failRate });

const EXTRAS = [
  { name: 'paused-memory', script: 'paused-memory.ts', args: ['--sagas', full ? '100000' : '20000'] },
  { name: 'restore', script: 'restore.ts', args: ['--sagas', full ? '50000' : '10000'] },
  { name: 'inspector', script: 'inspector.ts', args: ['--sagas', full ? '5000' : '1500'] },
  { name: 'chart-cost', script: 'chart-cost.ts', args: ['--sagas', full ? '10000' : '3000'] },
  { name: 'deadlines', script: 'deadlines.ts', args: ['--armed', full ? '100000' : '50000'] },
  // 1, 2 and 3 orchestrator instances on one Redis (SagaCluster), 3 interleaved repeats: about 2 minutes. Its tables go into the .md.
  { name: 'cluster', script: 'cluster.ts', args: ['--sagas', full ? '4000' : '2000'], tables: true },
].filter((e) => picked(e.name));

type Json = Record<string, unknown>;

/** The JSON line a script printed last, and the table lines (`|`) and notes after its first table. */
function runScript(script: string, args: string[], flags: string[] = [], tables?: string[]): Promise<Json | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, '--import', 'tsx', here(script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').reverse().find((l) => l.startsWith('RESULT ') || l.startsWith('{'));
      if (tables) {
        const all = out.split('\n');
        const first = all.findIndex((l) => l.startsWith('|'));
        if (first >= 0) tables.push(...all.slice(Math.max(0, first - 2)).filter((l) => l !== line));
      }
      if (!line || code !== 0) process.stderr.write(`\n${script} ${args.join(' ')} exited ${code}:\n${err.split('\n').filter((l) => !l.includes('nodedir')).join('\n')}\n`);
      resolve(line ? (JSON.parse(line.startsWith('RESULT ') ? line.slice(7) : line) as Json) : null);
    });
  });
}

const bar = new cliProgress.SingleBar(
  { format: 'bench {bar} {value}/{total} runs | {what}', stream: process.stderr, hideCursor: true, noTTYOutput: true, notTTYSchedule: 5_000 },
  cliProgress.Presets.shades_classic,
);
bar.start(matrix.length + EXTRAS.length, 0, { what: '' });
const runs: Json[] = [];
let failures = 0;
for (const run of matrix) {
  bar.update({ what: `${run.contender.name} c=${run.concurrency} fail=${run.failRate}` });
  const scale = run.concurrency <= 4 ? 0.1 : run.concurrency >= 256 ? 2 : 1;
  const sagas = Math.max(100, Math.round(run.contender.sagas * scale));
  const result = await runScript(`./contenders/${run.contender.script}`, [
    '--concurrency', String(run.concurrency),
    '--sagas', String(sagas),
    '--warmup', String(Math.min(2000, Math.round(sagas / 5))),
    '--fail-rate', String(run.failRate),
    ...(run.contender.variant ? ['--variant', run.contender.variant] : []),
  ]);
  if (!result || result.errors !== 0) failures++;
  if (result) runs.push({ ...result, contender: run.contender.name });
  bar.increment();
}
const extras: Json[] = [];
const extraTables: string[] = [];
for (const extra of EXTRAS) {
  bar.update({ what: extra.name });
  const result = await runScript(`./${extra.script}`, extra.args, ['--expose-gc'], 'tables' in extra && extra.tables ? extraTables : undefined);
  if (result) extras.push(result);
  else failures++;
  bar.increment();
}
bar.stop();

// Medians of the repeats, then ratios against the floors measured in this same run.
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const groups = new Map<string, Json[]>();
for (const r of runs) {
  const key = `${r.contender}|${r.concurrency}|${r.failRate}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
const rows: Json[] = [...groups.values()].map((rs): Json => {
  const mid = [...rs].sort((a, b) => (a.sagasPerSec as number) - (b.sagasPerSec as number))[Math.floor(rs.length / 2)]!;
  return { ...mid, repeats: rs.length, sagasPerSec: median(rs.map((r) => r.sagasPerSec as number)), errors: rs.reduce((n, r) => n + (r.errors as number), 0) };
});
const floorOf = (name: string, c: unknown, f: unknown) => rows.find((r) => r.contender === name && r.concurrency === c && r.failRate === f)?.sagasPerSec as number | undefined;
for (const r of rows) {
  const floor = String(r.contender).includes('memory') || String(r.contender).endsWith('-ws') ? 'floor-ws' : 'floor-redis';
  const base = floorOf(floor, r.concurrency, r.failRate);
  (r as Json).vsFloor = base ? +((r.sagasPerSec as number) / base).toFixed(2) : null;
  (r as Json).floor = floor;
}

const cpu = (r: Json) =>
  Object.entries((r.processes ?? {}) as Record<string, { cpuPct: number | null; peakRssMb: number | null }>)
    .map(([name, p]) => `${name} ${p.cpuPct ?? '?'}% / ${p.peakRssMb ?? '?'} MB`)
    .join(', ');
const header = '| contender | in flight | failing | sagas/s | steps/s | p50 ms | p99 ms | vs floor | errors | CPU / peak RSS per process |';
const lines = [header, '|---|---|---|---|---|---|---|---|---|---|'];
for (const r of rows) {
  lines.push(
    `| ${r.contender} | ${r.concurrency} | ${Number(r.failRate) * 100}% | ${r.sagasPerSec} | ${r.stepsPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.vsFloor === null ? '—' : `${r.vsFloor}× ${r.floor}`} | ${r.errors} | ${cpu(r)} |`,
  );
}
const date = new Date().toISOString();
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), Node ${process.version}`;
const md = [`Measured ${date.slice(0, 10)} on ${machine}; ${full ? 'full matrix, medians of 3' : 'quick run'}${only.length ? `, only ${only.join(', ')}` : ''}.`, '', ...(rows.length ? lines : []), ''];
for (const e of extras) md.push(`- ${e.bench}: ${JSON.stringify(e)}`);
if (extraTables.length) md.push('', ...extraTables);
console.log(`\n${md.join('\n')}`);

mkdirSync(here('./results/'), { recursive: true });
// A run of some contenders or extras only does not replace the day's full results.
const base = here(`./results/${date.slice(0, 10)}${full ? '-full' : ''}${only.length ? `-${only.join('+').replace(/[^\w+-]/g, '_')}` : ''}`);
writeFileSync(`${base}.json`, JSON.stringify({ date, machine, full, rows, runs, extras }, null, 2) + '\n');
writeFileSync(`${base}.md`, md.join('\n') + '\n');
console.log(`\nwrote ${base}.json and .md`);
// One JSON line of figures, last: every row (medians) and every extra.
console.log(JSON.stringify({ bench: 'sagachart', date, machine, full, rows, extras }));
if (failures) {
  console.error(`${failures} run(s) failed or had errors: they are not results.`);
  process.exitCode = 1;
}
