import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from './run-script.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A child process running a TypeScript file of the repository with tsx, its stdout read as lines
 * (`TAG {json}`), its stdin open for commands, stopped by its own pid. The crash test and the
 * two-phase commit's integration tests run their orchestrators and participants in these.
 */
export class ChildScript {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  readonly closed: Promise<ChildExit>;
  stderr = '';
  #exit: ChildExit | null = null;
  #syncs = 0;
  readonly #watchers = new Set<() => void>();

  constructor(
    readonly name: string,
    file: string,
    env: Record<string, string>,
  ) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // A child killed while the test writes to it must not fail the test process.
    this.proc.stdin!.on('error', () => undefined);
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.#watchers) w();
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      if (this.stderr.length > 200_000) this.stderr = this.stderr.slice(-100_000);
    });
    this.closed = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        this.#exit = { code, signal };
        for (const w of this.#watchers) w();
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return this.#exit === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Lines `TAG {json}` so far, parsed. */
  tagged<T>(tag: string): T[] {
    return this.lines.filter((l) => l.startsWith(`${tag} `)).map((l) => JSON.parse(l.slice(tag.length + 1)) as T);
  }

  /** The first line that is `tag` or starts with `tag `, after `from` lines; throws if the process ends first or after `timeoutMs`. */
  waitFor(tag: string, timeoutMs: number, from = 0): Promise<string> {
    return this.#waitForLine((l) => l === tag || l.startsWith(`${tag} `), tag, timeoutMs, from);
  }

  #waitForLine(matches: (line: string) => boolean, tag: string, timeoutMs: number, from: number): Promise<string> {
    const find = () => this.lines.slice(from).find(matches);
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = find();
        if (line !== undefined) return done(() => resolve(line));
        if (this.#exit) return done(() => reject(new Error(`${this.name} exited (${JSON.stringify(this.#exit)}) before printing ${tag}\n${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name} printed no ${tag} within ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.#watchers.delete(check);
        fn();
      };
      this.#watchers.add(check);
      check();
    });
  }

  /** Writes a command line to the child's stdin. */
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /**
   * A barrier: asks the child to answer `SYNC n` and waits for its `SYNCED {json}`. Its stdout is
   * one ordered stream, so every line it wrote before answering has been read once this resolves.
   */
  async sync<T>(timeoutMs = 5_000): Promise<T> {
    const n = ++this.#syncs;
    const from = this.lines.length;
    this.send(`SYNC ${n}`);
    const line = await this.#waitForLine((l) => l.startsWith(`SYNCED {"n":${n},`), `SYNCED ${n}`, timeoutMs, from);
    return JSON.parse(line.slice('SYNCED '.length)) as T;
  }

  /** Ends the process with `signal` (by its pid); after `graceMs` without exit, SIGKILL. */
  async stop(signal: NodeJS.Signals, graceMs = 10_000): Promise<ChildExit> {
    if (this.running && this.proc.pid !== undefined) process.kill(this.proc.pid, signal);
    const timer = setTimeout(() => {
      if (this.running && this.proc.pid !== undefined) process.kill(this.proc.pid, 'SIGKILL');
    }, graceMs);
    const exit = await this.closed;
    clearTimeout(timer);
    return exit;
  }

  tail(chars = 4_000): string {
    return `--- ${this.name} stderr (tail) ---\n${this.stderr.slice(-chars)}`;
  }
}
