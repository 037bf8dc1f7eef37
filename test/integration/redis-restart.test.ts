import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RedisSagaRepository,
  Saga,
  SagaManager,
  SagaRequest,
  SagaStatus,
  type OutgoingRequest,
  type SagaListFilter,
  type SagaListPage,
  type SagaRecord,
  type SagaRepository,
} from '../../src/index.js';
import { CountingRepository } from '../support/counting-repository.js';
import { collectingLogger, ManualBroker, settle, until } from '../support/harness.js';
import { freePort, RedisServerProcess } from '../support/redis-server.js';

const SAGA = new Saga('restart-order')
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.reserve', {}))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .remoteStep('ship')
  .onExecute(() => new SagaRequest('shipping.ship', {}))
  .commit();

const EXECUTIONS = 30;
const STEPS = 3;
/**
 * One paused version per remote step (nothing is stored before the first wait), then one per
 * answer of the two-phase commit: each of the three services votes and acknowledges, the last
 * acknowledgement storing the finished execution.
 */
const VERSIONS = STEPS + 1 + 2 * STEPS;

/** Server time the spinning script holds Redis for: the test's SIGTERM must land within it. */
const SPIN_MS = 2_000;
/** Spins for ARGV[1] microseconds of server time. */
const SPIN = `local t0 = redis.call('TIME')
local s0 = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - s0 >= tonumber(ARGV[1]) then return 1 end
end`;

/** A process's state letter (R running, S sleeping, T stopped) and CPU time so far, in clock ticks, from /proc. */
function processStat(pid: number): { state: string; ticks: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ticks: Number(fields[11]) + Number(fields[12]) };
}

/** A bare connection to Redis that writes one command and resolves once the kernel has it (ioredis would queue or re-send it). */
async function rawConnection(port: number): Promise<{ send: (...args: string[]) => Promise<void>; close: () => void }> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return {
    send: (...args) =>
      new Promise<void>((resolve, reject) =>
        socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, (err) => (err ? reject(err) : resolve())),
      ),
    close: () => socket.destroy(),
  };
}

/** Resolves with `promise`, or with nothing after `ms`: for cleanup that must not hang a failed test. */
const bounded = (promise: Promise<unknown>, ms: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
};

let dir: string | undefined;
let server: RedisServerProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sagachart-redis-restart-'));
  server = new RedisServerProcess(await freePort(), dir);
  await server.start();
});

afterAll(async () => {
  await server?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Delegates to another repository and notes, in order, the execution of every store begun (finished or not). */
class StoreAttempts implements SagaRepository {
  readonly begun: string[] = [];
  constructor(readonly inner: SagaRepository) {}
  store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    this.begun.push(record.uuid);
    return this.inner.store(record, expectedVersion);
  }
  load(uuid: string): Promise<SagaRecord | null> {
    return this.inner.load(uuid);
  }
  loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    return this.inner.loadMany(uuids);
  }
  delete(uuid: string): Promise<boolean> {
    return this.inner.delete(uuid);
  }
  list(filter?: SagaListFilter): Promise<SagaListPage> {
    return this.inner.list(filter);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Participants that answer every request after a short random delay. Requests of the executions
 * in `holdFor` are kept back while `holding`, and answered by `release()`: so that the test can
 * be sure some responses arrive while Redis is down.
 */
class DelayedParticipants {
  readonly scheduled = new Set<string>();
  readonly held: OutgoingRequest[] = [];
  timers = 0;
  answered = 0;
  answeredWhileDown = 0;
  /** The responses delivered while `down`: their execution, and how many stores had begun by then. */
  readonly deliveredWhileDown: Array<{ uuid: string; storesBegun: number }> = [];
  holding = false;
  down = false;
  readonly #poll: ReturnType<typeof setInterval>;

  constructor(
    readonly broker: ManualBroker,
    readonly holdFor: ReadonlySet<string>,
    readonly attempts: StoreAttempts,
  ) {
    this.#poll = setInterval(() => this.#pump(), 2);
  }

  release(): void {
    for (const request of this.held.splice(0)) this.#answer(request);
  }

  stop(): void {
    clearInterval(this.#poll);
  }

  #pump(): void {
    for (const request of this.broker.requests) {
      if (this.scheduled.has(request.requestId)) continue;
      this.scheduled.add(request.requestId);
      this.timers++;
      setTimeout(() => {
        this.timers--;
        if (this.holding && this.holdFor.has(request.uuid)) this.held.push(request);
        else this.#answer(request);
      }, 5 + Math.floor(Math.random() * 40));
    }
  }

  #answer(request: OutgoingRequest): void {
    this.answered++;
    if (this.down) {
      this.answeredWhileDown++;
      this.deliveredWhileDown.push({ uuid: request.uuid, storesBegun: this.attempts.begun.length });
    }
    this.broker.answer(request);
  }
}

describe('SagaManager across a Redis restart', () => {
  it('Redis restart mid-run (a test-owned redis-server with AOF on a free port, stopped and started by pid): the manager reconnects and the sagas finish', async () => {
    const redis = server!;
    const inner = new RedisSagaRepository({ redis: redis.url, keyPrefix: 'sagachart-restart:' });
    const connectionErrors: string[] = [];
    inner.redis.on('error', (err: Error) => connectionErrors.push(err.message));
    const repository = new CountingRepository(inner);
    const attempts = new StoreAttempts(repository);
    const broker = new ManualBroker();
    const log = collectingLogger();
    // No periodic recovery: a saga that stalls must show up as a failure, not be picked up later.
    const manager = new SagaManager({ repository: attempts, broker, sagas: [SAGA], logger: log, recoverIntervalMs: 0, pollIntervalMs: 50 });
    let participants: DelayedParticipants | undefined;
    /** What is known of an execution that did not end as expected, for the failure message. */
    const diagnose = async (uuid: string, outcome: string) => {
      const record = await inner.load(uuid);
      return {
        uuid,
        outcome,
        stored: record && { status: record.status, version: record.version, outbox: record.outbox.map((r) => r.target) },
        storesThatSucceeded: repository.stored.filter((s) => s.uuid === uuid).map((s) => s.version),
        conflicts: repository.conflicts
          .map((c, i) => ({ ...c, ownWrite: record !== null && JSON.stringify(repository.conflictRecords[i]) === JSON.stringify(record) }))
          .filter((c) => c.uuid === uuid),
        requestsSent: broker.requests.filter((r) => r.uuid === uuid).map((r) => r.target),
        log: log.lines.filter((l) => l.fields?.['uuid'] === uuid).map((l) => `${l.level}: ${l.message}`),
      };
    };
    try {
      const started = await Promise.all(Array.from({ length: EXECUTIONS }, () => manager.run(SAGA, { pauseOnDisk: true })));
      const uuids = started.map((e) => e.uuid);
      expect(manager.liveCount).toBe(0);

      // Three groups: G's stores are held back and let through just before the stop, H's
      // responses are held back and delivered while Redis is down, F runs on throughout.
      const gated = new Set(uuids.filter((_, i) => i % 3 === 0));
      const heldBack = new Set(uuids.filter((_, i) => i % 3 === 1));
      participants = new DelayedParticipants(broker, heldBack, attempts);
      const p = participants;
      // Mid-run: a third of the responses are in.
      await until(() => p.answered >= EXECUTIONS, 'a third of the responses were delivered', 10_000);
      p.holding = true;
      repository.gate(gated);
      await until(() => p.held.length >= 3 && repository.gated >= 3, 'some responses and some stores were held back', 10_000);

      // Stop Redis with stores in flight, deterministically and with no wall-clock sequencing: freeze
      // the server (SIGSTOP), let G's stores out and queue a spinning script behind them on a
      // connection of its own, so that all of it waits in the server's sockets; thaw it, and once it
      // is seen burning CPU in the spin (it read the stores and the script in one event-loop turn),
      // send SIGTERM. Redis ends the spin, shuts down at the end of that turn and never answers the
      // stores it applied (they are in the AOF), as when Redis stops under load.
      const pidBefore = redis.pid!;
      const spinner = await rawConnection(redis.port);
      let frozen = false;
      try {
        process.kill(pidBefore, 'SIGSTOP');
        frozen = true;
        await until(() => processStat(pidBefore).state === 'T', 'redis-server is stopped');
        const storesLetThrough = repository.gated;
        repository.open();
        await until(() => repository.gated === 0, 'the held-back stores went to the Redis client');
        await settle(); // the group commit goes out on a microtask, and ioredis writes it to its socket
        await spinner.send('EVAL', SPIN, '0', String(SPIN_MS * 1_000));
        const ticks = processStat(pidBefore).ticks;
        process.kill(pidBefore, 'SIGCONT');
        frozen = false;
        await until(() => processStat(pidBefore).ticks - ticks >= 3, 'redis-server runs the spinning script', 10_000);
        const inFlightAtStop = repository.inFlight;
        await redis.stop('SIGTERM');
        console.info(`[redis-restart] stopped with ${inFlightAtStop} stores in flight (${storesLetThrough} let through just before)`);
        expect(inFlightAtStop).toBeGreaterThanOrEqual(storesLetThrough);
        expect(storesLetThrough).toBeGreaterThanOrEqual(3);
      } finally {
        if (frozen) process.kill(pidBefore, 'SIGCONT');
        spinner.close();
      }
      p.down = true;
      const storedBeforeRestart = repository.stored.length;
      // Redis is down: the held responses and F's responses keep arriving.
      p.holding = false;
      p.release();
      await until(() => p.timers === 0, 'the responses due while Redis is down were delivered', 5_000);
      expect(p.answeredWhileDown).toBeGreaterThanOrEqual(3);
      // The manager takes each of them while Redis is down: each begins a store that waits for Redis.
      await until(
        () => p.deliveredWhileDown.every(({ uuid, storesBegun }) => attempts.begun.indexOf(uuid, storesBegun) !== -1),
        'the manager took every response delivered while Redis was down',
        5_000,
      );
      expect(repository.stored.length, 'no store succeeds while Redis is down').toBe(storedBeforeRestart);

      const answeredBeforeRestart = p.answered;

      await redis.start();
      p.down = false;
      expect(redis.pid).not.toBe(pidBefore);

      const outcomes = await Promise.allSettled(uuids.map((uuid) => manager.waitFor(uuid, { timeoutMs: 10_000 })));
      const unfinished = [];
      for (const [i, uuid] of uuids.entries()) {
        const outcome = outcomes[i]!;
        if (outcome.status === 'fulfilled' && outcome.value.status === SagaStatus.Finished) continue;
        unfinished.push(await diagnose(uuid, outcome.status === 'fulfilled' ? outcome.value.status : String(outcome.reason)));
      }
      expect(unfinished).toEqual([]);
      expect(p.answered).toBe(EXECUTIONS * STEPS);
      expect(p.answered).toBeGreaterThan(answeredBeforeRestart);

      // None lost: every execution is listed, finished, at the expected version.
      const page = await repository.list({ limit: 1_000 });
      expect(page.cursor).toBeNull();
      expect(page.items.map((s) => s.uuid).sort()).toEqual([...uuids].sort());
      for (const summary of page.items) {
        expect({ uuid: summary.uuid, status: summary.status, version: summary.version }).toEqual({ uuid: summary.uuid, status: SagaStatus.Finished, version: VERSIONS });
      }
      // No gaps and no duplicates: the manager stored versions 1..N of each execution, once each.
      const byUuid = new Map<string, number[]>(uuids.map((u) => [u, []]));
      for (const { uuid, version } of repository.stored) byUuid.get(uuid)?.push(version);
      const expected = Array.from({ length: VERSIONS }, (_, i) => i + 1);
      const gaps = [];
      for (const uuid of uuids) {
        if (JSON.stringify(byUuid.get(uuid)!.sort((x, y) => x - y)) !== JSON.stringify(expected)) gaps.push(await diagnose(uuid, 'finished'));
      }
      expect(gaps).toEqual([]);
      expect(repository.conflicts).toEqual([]);
      expect(repository.failures).toEqual([]);
      expect(log.lines.filter((l) => l.level === 'error')).toEqual([]);
      // Each request went out once.
      const sent = broker.requests.map((r) => r.requestId);
      expect(sent).toHaveLength(new Set(sent).size);
      expect(sent).toHaveLength(EXECUTIONS * STEPS);
      console.info(
        `[redis-restart] ${p.answeredWhileDown} responses delivered while Redis was down; ${connectionErrors.length} connection errors; ` +
          `${log.lines.filter((l) => l.level === 'warn').length} warnings`,
      );
    } finally {
      participants?.stop();
      // Bounded: after a failure while Redis is down, queued stores would wait for it for ever.
      await bounded(manager.close(), 3_000);
      await bounded(inner.close(), 1_000);
      inner.redis.disconnect();
    }
  });
});
