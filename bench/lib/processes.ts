// Child processes of a contender, and CPU and peak-RSS sampling of any pid from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Starts a TypeScript file of bench/ with tsx; resolves once it prints `ready` (a line). */
export async function startScript(file: string, args: string[], ready = 'READY', env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith(ready)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
  });
  return child;
}

/** Stops a child by its pid and waits for it. */
export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

const TICKS = 100; // USER_HZ on Linux

/** CPU time (s) of a process so far, from /proc/<pid>/stat; `null` if it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime + stime
  } catch {
    return null;
  }
}

/** Peak resident memory (MB) of a process, VmHWM; `null` if it is gone. */
export function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** CPU% over the measured window and peak RSS of each named process. */
export interface ProcessFigures {
  cpuPct: number | null;
  peakRssMb: number | null;
}

/**
 * Runs `work` and reports, for each named pid, its CPU use over exactly that window (100% = one
 * core) and its peak RSS.
 */
export async function measured<T>(pids: Record<string, number | undefined>, work: () => Promise<T>): Promise<{ result: T; processes: Record<string, ProcessFigures> }> {
  const named = Object.entries(pids).filter((e): e is [string, number] => typeof e[1] === 'number');
  const before = new Map(named.map(([name, pid]) => [name, cpuSeconds(pid)]));
  const t0 = process.hrtime.bigint();
  const result = await work();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const processes: Record<string, ProcessFigures> = {};
  for (const [name, pid] of named) {
    const start = before.get(name);
    const end = cpuSeconds(pid);
    processes[name] = {
      cpuPct: start === null || start === undefined || end === null ? null : Math.round(((end - start) / wall) * 100),
      peakRssMb: peakRssMb(pid),
    };
  }
  return { result, processes };
}

/** The pid of the Redis at `url`, from INFO (to measure a server this process did not start). */
export async function redisPid(redis: { info(section: string): Promise<string> }): Promise<number | undefined> {
  const m = /process_id:(\d+)/.exec(await redis.info('server'));
  return m ? Number(m[1]) : undefined;
}

/** Deletes a benchmark's keys (all under `prefix`) and disconnects. */
export async function dropKeys(redis: { keys(pattern: string): Promise<string[]>; del(...keys: string[]): Promise<number>; disconnect(): void }, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  for (let k = 0; k < keys.length; k += 1000) await redis.del(...keys.slice(k, k + 1000));
  redis.disconnect();
}
