// Several orchestrator instances on one Redis (SagaCluster): 1, 2 and 3 instances, each a process
// of its own (bench/lib/cluster-instance.ts: WebSocketBroker + SagaCluster + SagaManager on
// RedisSagaRepository, all under one random key prefix, deleted afterwards), the three services of
// the saga (bench/lib/cluster-saga.ts) connected from one participant process, service s to
// instance s mod N, so that with more than one instance requests and responses cross instances
// through Redis. The same number of sagas per configuration, started spread evenly over the
// instances (each runs its share, concurrency/N at a time: the same total in flight), after a
// warm-up. Figures per configuration: sagas/s and its ratio to 1 instance, p50/p99, the CPU of
// each instance (its process.cpuUsage over the window), of the participants and of Redis (INFO cpu),
// Redis commands, bytes and CPU per saga (INFO stats and commandstats deltas), and the messages
// that crossed instances per saga (SagaCluster.stats). Redis is a redis-server of its own on a
// free port (no snapshots, no AOF), so that INFO counts only this benchmark; with `--redis <url>`
// (e.g. the local redis://127.0.0.1:6379) it runs on that one under a random key prefix, deleted
// afterwards, and the commands/s of other clients, sampled for a second before each configuration,
// are reported (`otherCmdsPerSec`), not subtracted. The CPU other processes used meanwhile is
// reported too (`otherCpuPct`, from /proc/stat): on a shared machine it is the noise.
// Run: node --import tsx bench/cluster.ts [--sagas 2000] [--concurrency 64] [--instances 1,2,3] [--repeats 3]
//   [--cpu-prof <dir>] [--redis <url>]
//   (or `npm run bench -- cluster`)
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { freePort } from './lib/free-port.js';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { CLUSTER_SERVICES } from './lib/cluster-saga.js';
import { clearRedisPrefix } from './lib/clear-redis-prefix.js';
import { cpuSeconds, startScript, stop } from './lib/processes.js';

const { values } = parseArgs({
  options: {
    sagas: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '64' },
    instances: { type: 'string', default: '1,2,3' },
    'fail-rate': { type: 'string', default: '0.1' },
    /** A Redis to run on (e.g. redis://127.0.0.1:6379); by default a redis-server of its own, so that no other client's commands count. */
    redis: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    'timeout-s': { type: 'string', default: '45' },
    /** Writes a CPU profile of each instance process into this directory. */
    'cpu-prof': { type: 'string' },
  },
});
const sagas = Number(values.sagas);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const configs = values.instances.split(',').map(Number);
const failRate = Number(values['fail-rate']);
let privateRedis: ChildProcess | undefined;
let redisUrl = values.redis ?? '';
if (!redisUrl) {
  // The same settings as the Redis of the other benchmarks: no snapshots, no AOF.
  const port = await freePort();
  privateRedis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
}
const timeoutMs = Number(values['timeout-s']) * 1000;
const repeats = Math.max(1, Number(values.repeats));
/** SagaCluster's default lease: renewed every third of it, one Lua call per instance. */
const LEASE_MS = 3000;

const admin = new Redis(redisUrl, { maxRetriesPerRequest: 3, retryStrategy: (n) => (n > 100 ? null : 50) });
admin.on('error', () => undefined); // while the server of its own starts
for (let i = 0; ; i++) {
  try {
    await admin.ping();
    break;
  } catch (err) {
    if (i > 100) throw err;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const redisVersion = (await info()).get('redis_version');

type Info = Map<string, string>;
async function info(): Promise<Info> {
  const text = await admin.info('everything');
  const map: Info = new Map();
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) map.set(line.slice(0, at), line.slice(at + 1));
  }
  return map;
}
const num = (i: Info, key: string) => Number(i.get(key) ?? 0);
const redisCpu = (i: Info) => num(i, 'used_cpu_sys') + num(i, 'used_cpu_user');
/** Calls per command from commandstats (`cmdstat_xadd:calls=12,usec=...`). */
function commandCalls(i: Info): Map<string, number> {
  const calls = new Map<string, number>();
  for (const [key, value] of i) {
    if (!key.startsWith('cmdstat_')) continue;
    const m = /calls=(\d+)/.exec(value);
    if (m) calls.set(key.slice(8), Number(m[1]));
  }
  return calls;
}

interface Done {
  type: 'done';
  instance: string;
  seconds: number;
  latencies: number[];
  finished: number;
  compensated: number;
  errors: number;
}
interface Sample {
  instance: string;
  cpuSeconds: number;
  stats: Record<string, number>;
}

function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null) => reject(new Error(`instance exited with ${code} while waiting for "${type}"`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

const split = (total: number, parts: number, k: number) => Math.floor(total / parts) + (k < total % parts ? 1 : 0);
const round = (n: number, digits = 0) => Number(n.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds the whole machine has been busy (every core), from /proc/stat. */
function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return ((fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) + (fields[6] ?? 0) + (fields[7] ?? 0)) / 100;
}

/** Runs `total` sagas spread over the instances; then each one's CPU and routing since it started. */
async function runInstances(children: ChildProcess[], from: number, total: number): Promise<{ wall: number; done: Done[]; samples: Sample[] }> {
  const n = children.length;
  let offset = from;
  const t0 = process.hrtime.bigint();
  const pending = children.map((child, k) => {
    const count = split(total, n, k);
    const answer = next<Done>(child, 'done');
    child.send({ type: 'run', from: offset, count, concurrency: split(concurrency, n, k) });
    offset += count;
    return answer;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${timeoutMs / 1000} s`)), timeoutMs)));
  try {
    const done = await Promise.race([Promise.all(pending), timeout]);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const samples = await Promise.all(children.map((c) => (c.send({ type: 'sample' }), next<Sample>(c, 'sample'))));
    return { wall, done, samples };
  } finally {
    clearTimeout(timer);
  }
}

async function measure(n: number): Promise<Record<string, unknown>> {
  const prefix = `sagachart-bench-cluster:${randomBytes(4).toString('hex')}:`;
  // What other clients of this Redis do meanwhile, with nothing of this benchmark running.
  const quiet0 = await info();
  await sleep(1000);
  const quiet1 = await info();
  const otherCmdsPerSec = num(quiet1, 'total_commands_processed') - num(quiet0, 'total_commands_processed') - 1;

  const children: ChildProcess[] = [];
  let participants: ChildProcess | undefined;
  try {
    const instanceScript = fileURLToPath(new URL('./lib/cluster-instance.ts', import.meta.url));
    for (let k = 0; k < n; k++) {
      children.push(fork(instanceScript, [`i${k + 1}`, prefix, redisUrl, String(failRate)], { execArgv: ['--import', 'tsx', ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [])], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
    }
    const ready = await Promise.all(children.map((c) => next<{ url: string; pid: number }>(c, 'ready')));
    await Promise.all(children.map((c) => (c.send({ type: 'members', expect: n }), next<{ members: string[] }>(c, 'members'))));
    // Service s to instance s mod N.
    const owner = (s: number) => s % n;
    participants = await startScript('lib/cluster-participants.ts', CLUSTER_SERVICES.map((_, s) => ready[owner(s)]!.url));
    await Promise.all(
      children.map((c, k) => (c.send({ type: 'services', expect: CLUSTER_SERVICES.filter((_, s) => owner(s) === k) }), next(c, 'services'))),
    );
    // The cluster idle: leases, blocking reads, claims.
    const idle0 = await info();
    await sleep(1000);
    const idle1 = await info();
    const idleCmdsPerSec = num(idle1, 'total_commands_processed') - num(idle0, 'total_commands_processed') - 1;

    await runInstances(children, 1_000_000, warmup);

    const before = await info();
    const participantsCpu0 = cpuSeconds(participants.pid!);
    const driverCpu0 = process.cpuUsage();
    const busy0 = machineBusySeconds();
    const { wall, done, samples } = await runInstances(children, 0, sagas);
    const busy1 = machineBusySeconds();
    const driverCpu = process.cpuUsage(driverCpu0);
    const participantsCpu1 = cpuSeconds(participants.pid!);
    const after = await info();
    const ours = samples.reduce((s, d) => s + d.cpuSeconds, 0) + (participantsCpu1 ?? 0) - (participantsCpu0 ?? 0) + (redisCpu(after) - redisCpu(before)) + (driverCpu.user + driverCpu.system) / 1e6;

    const latencies = done.flatMap((d) => d.latencies).sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
    const sum = (key: string) => samples.reduce((s, d) => s + (d.stats[key] ?? 0), 0);
    const commands = num(after, 'total_commands_processed') - num(before, 'total_commands_processed') - 1; // the INFO
    const c0 = commandCalls(before);
    const byCommand = Object.fromEntries(
      [...commandCalls(after)]
        .map(([cmd, calls]): [string, number] => [cmd, calls - (c0.get(cmd) ?? 0) - (cmd === 'info' ? 1 : 0)])
        .filter(([, calls]) => calls > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([cmd, calls]) => [cmd, round(calls / sagas, 2)]),
    );
    const crossMessages = sum('forwardedRequests') + sum('forwardedResponses') + sum('forwardedActions');
    return {
      instances: n,
      sagas,
      seconds: round(wall, 3),
      sagasPerSec: round(sagas / wall),
      p50Ms: round(pct(0.5), 3),
      p99Ms: round(pct(0.99), 3),
      finished: done.reduce((s, d) => s + d.finished, 0),
      compensated: done.reduce((s, d) => s + d.compensated, 0),
      errors: done.reduce((s, d) => s + d.errors, 0),
      instanceCpuPct: Object.fromEntries(samples.map((d) => [d.instance, round((d.cpuSeconds / wall) * 100)])),
      instanceCpuMsPerSaga: round((samples.reduce((s, d) => s + d.cpuSeconds, 0) / sagas) * 1000, 3),
      participantsCpuPct: participantsCpu0 === null || participantsCpu1 === null ? null : round(((participantsCpu1 - participantsCpu0) / wall) * 100),
      redisCpuPct: round(((redisCpu(after) - redisCpu(before)) / wall) * 100),
      redisCpuUsPerSaga: round(((redisCpu(after) - redisCpu(before)) / sagas) * 1e6),
      redisCmdsPerSaga: round(commands / sagas, 2),
      redisCmdsByCommandPerSaga: byCommand,
      redisBytesInPerSaga: round((num(after, 'total_net_input_bytes') - num(before, 'total_net_input_bytes')) / sagas),
      redisBytesOutPerSaga: round((num(after, 'total_net_output_bytes') - num(before, 'total_net_output_bytes')) / sagas),
      redisMemoryBytesPerSaga: round((num(after, 'used_memory') - num(before, 'used_memory')) / sagas),
      crossInstanceMsgsPerSaga: round(crossMessages / sagas, 2),
      forwardedRequestsPerSaga: round(sum('forwardedRequests') / sagas, 2),
      forwardedResponsesPerSaga: round(sum('forwardedResponses') / sagas, 2),
      localRequestsPerSaga: round(sum('sentLocally') / sagas, 2),
      leaseCallsInWindow: round((n * wall * 1000) / (LEASE_MS / 3)),
      idleCmdsPerSec,
      otherCmdsPerSec,
      // The rest of the machine meanwhile (other processes, 100% = one core), and the load average.
      otherCpuPct: round((Math.max(0, busy1 - busy0 - ours) / wall) * 100),
      loadAverage1m: round(loadavg()[0] ?? 0, 2),
    };
  } finally {
    await Promise.all(
      children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null || !c.connected) return;
        const closed = next(c, 'closed').catch(() => undefined);
        c.send({ type: 'close' });
        const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
        await closed;
        clearTimeout(timer);
      }),
    );
    await stop(participants);
    await clearRedisPrefix(admin, prefix);
  }
}

// The configurations interleaved (1, 2, 3, 1, 2, 3, ...), so that a burst of other load on the
// machine falls on all of them alike. The machine may be shared: each configuration's figures are
// those of its repeat during which the other processes used the least CPU (every repeat's sagas/s
// and the others' CPU are kept, in the JSON and the notes under the table).
const runs = new Map<number, Array<Record<string, unknown>>>(configs.map((n) => [n, []]));
let failures = 0;
for (let r = 0; r < repeats; r++) {
  for (const n of configs) {
    try {
      const result = await measure(n);
      runs.get(n)!.push(result);
      if ((result.errors as number) > 0) failures++;
    } catch (err) {
      failures++;
      console.error(`${n} instance(s): ${err instanceof Error ? err.message : String(err)}`);
      runs.get(n)!.push({ instances: n, failed: err instanceof Error ? err.message : String(err) });
    }
  }
}
const results: Array<Record<string, unknown>> = configs.map((n) => {
  const all = runs.get(n)!;
  const ok = all.filter((r) => !r.failed).sort((a, b) => (a.otherCpuPct as number) - (b.otherCpuPct as number));
  if (!ok.length) return all[0]!;
  return {
    ...ok[0]!,
    repeats: all.length,
    repeatsSagasPerSec: all.map((r) => r.sagasPerSec ?? null),
    repeatsOtherCpuPct: all.map((r) => r.otherCpuPct ?? null),
    errors: all.reduce((s, r) => s + ((r.errors as number | undefined) ?? 0), 0),
    failedRepeats: all.length - ok.length,
  };
});
admin.disconnect();
if (privateRedis) {
  const exited = new Promise((r) => privateRedis!.once('exit', r));
  privateRedis.kill('SIGTERM');
  await exited;
}

const one = results.find((r) => r.instances === 1 && !r.failed);
const ratio = (r: Record<string, unknown>, key: string) => (one && r[key] !== undefined ? round((r[key] as number) / (one[key] as number), 2) : null);
for (const r of results) if (!r.failed) Object.assign(r, { vsOne: { sagasPerSec: ratio(r, 'sagasPerSec'), p50Ms: ratio(r, 'p50Ms'), p99Ms: ratio(r, 'p99Ms'), redisCmdsPerSaga: ratio(r, 'redisCmdsPerSaga'), redisCpuUsPerSaga: ratio(r, 'redisCpuUsPerSaga') } });

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), Node ${process.version}`;
console.log(`\n${sagas} sagas per configuration, ${concurrency} in flight in all, ${failRate * 100}% failing, after ${warmup} warm-up; of ${repeats} interleaved repeats the one with the least CPU used by other processes; Redis ${redisVersion}${privateRedis ? ' of its own' : ` at ${redisUrl}`}; ${machine}\n`);
console.log('| instances | sagas/s | × 1 instance | p50 ms | p99 ms | CPU per instance | participants CPU | Redis CPU | Redis CPU per saga | Redis commands per saga | bytes to / from Redis per saga | cross-instance messages per saga | errors | CPU of other processes |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  if (r.failed) {
    console.log(`| ${r.instances} | failed: ${r.failed} ||||||||||||`);
    continue;
  }
  const cpu = Object.values(r.instanceCpuPct as Record<string, number>).map((p) => `${p}%`).join(' + ');
  const v = r.vsOne as Record<string, number | null>;
  console.log(
    `| ${r.instances} | ${r.sagasPerSec} | ${v.sagasPerSec}× | ${r.p50Ms} | ${r.p99Ms} | ${cpu} | ${r.participantsCpuPct}% | ${r.redisCpuPct}% | ${r.redisCpuUsPerSaga} µs | ${r.redisCmdsPerSaga} | ${r.redisBytesInPerSaga} / ${r.redisBytesOutPerSaga} B | ${r.crossInstanceMsgsPerSaga} | ${r.errors} | ${r.otherCpuPct}% |`,
  );
}
const names = [...new Set(results.flatMap((r) => Object.keys((r.redisCmdsByCommandPerSaga ?? {}) as object)))];
console.log(`\n| Redis commands per saga | ${results.map((r) => `${r.instances} instance${r.instances === 1 ? '' : 's'}`).join(' | ')} |`);
console.log(`|---|${results.map(() => '---|').join('')}`);
for (const name of names) console.log(`| ${name} | ${results.map((r) => ((r.redisCmdsByCommandPerSaga ?? {}) as Record<string, number>)[name] ?? 0).join(' | ')} |`);
console.log(`\nidle cluster, commands/s: ${results.map((r) => `${r.instances}: ${r.idleCmdsPerSec}`).join(', ')}; other clients of this Redis before each, commands/s: ${results.map((r) => r.otherCmdsPerSec).join(', ')}; other processes' CPU during each: ${results.map((r) => `${r.otherCpuPct}%`).join(', ')} (load average ${results.map((r) => r.loadAverage1m).join(', ')}); sagas/s of every repeat: ${results.map((r) => `${r.instances}: ${((r.repeatsSagasPerSec ?? []) as unknown[]).join(' ')}`).join(', ')}`);
console.log(JSON.stringify({ bench: 'cluster', date: new Date().toISOString(), machine, redis: privateRedis ? `${redisVersion}, own server` : `${redisVersion} at ${redisUrl}`, sagas, warmup, concurrency, failRate, leaseMs: LEASE_MS, configs: results }));
if (failures) process.exitCode = 1;
