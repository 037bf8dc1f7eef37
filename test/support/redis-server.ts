import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** Spins for ARGV[1] microseconds of server time. */
const SPIN = `local t0 = redis.call('TIME')
local s0 = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - s0 >= tonumber(ARGV[1]) then return 1 end
end`;

/** A port that was free a moment ago: bound on port 0, then closed. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  const port = address.port;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

/**
 * A `redis-server` child process owned by a test, with AOF fsynced on every write, so that it can
 * be stopped (SIGTERM, by pid) and started again on the same port and directory without losing data.
 */
export class RedisServerProcess {
  child: ChildProcess | undefined;
  /** Last lines of the server's output, for diagnosing a failed start. */
  output = '';

  constructor(
    readonly port: number,
    readonly dir: string,
    /** More `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`. */
    readonly extraArgs: readonly string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server and resolves once it answers PING. */
  async start(timeoutMs = 10_000): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) throw new Error('redis-server is already running');
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir, '--save', '', ...this.extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited on start:\n${this.output}`);
      if (await this.#ping()) return;
      if (Date.now() > end) throw new Error(`redis-server did not answer PING within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `signal` to the server by its pid and resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    process.kill(child.pid, signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis-server (pid ${child.pid}) did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    });
    try {
      await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the server by its pid if it is still running (for afterAll, also after a failure). */
  async kill(): Promise<void> {
    try {
      await this.stop('SIGTERM', 3_000);
    } catch {
      const pid = this.child?.pid;
      if (pid !== undefined && this.child?.exitCode === null && this.child.signalCode === null) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  /**
   * A connection of its own that can keep the server busy: `busy(ms)` runs a Lua script that spins
   * for `ms` (the server serves no other client meanwhile; what they send waits in their sockets).
   * It never reconnects and never re-sends, so a script cut short by a stop does not run again.
   */
  async blocker(): Promise<{ busy: (ms: number) => Promise<unknown>; close: () => void }> {
    const redis = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, autoResendUnfulfilledCommands: false });
    redis.on('error', () => undefined);
    await redis.connect();
    return {
      busy: (ms) => redis.eval(SPIN, 0, Math.round(ms * 1000)).catch((err: unknown) => err),
      close: () => redis.disconnect(),
    };
  }

  async #ping(): Promise<boolean> {
    const redis = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500, retryStrategy: () => null, enableOfflineQueue: false });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return (await redis.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      redis.disconnect();
    }
  }
}
