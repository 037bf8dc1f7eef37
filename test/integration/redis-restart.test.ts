import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSagaRepository, Saga, SagaManager, SagaRequest, SagaStatus, type OutgoingRequest } from '../../src/index.js';
import { CountingRepository } from '../support/counting-repository.js';
import { collectingLogger, ManualBroker, until } from '../support/harness.js';
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
/** One paused version per remote step, then finished (nothing is stored before the first wait). */
const VERSIONS = STEPS + 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  holding = false;
  down = false;
  readonly #poll: ReturnType<typeof setInterval>;

  constructor(
    readonly broker: ManualBroker,
    readonly holdFor: ReadonlySet<string>,
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
    if (this.down) this.answeredWhileDown++;
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
    const broker = new ManualBroker();
    const log = collectingLogger();
    // No periodic recovery: a saga that stalls must show up as a failure, not be picked up later.
    const manager = new SagaManager({ repository, broker, sagas: [SAGA], logger: log, recoverIntervalMs: 0, pollIntervalMs: 50 });
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
      participants = new DelayedParticipants(broker, heldBack);
      const p = participants;
      // Mid-run: a third of the responses are in.
      await until(() => p.answered >= EXECUTIONS, 'a third of the responses were delivered', 10_000);
      p.holding = true;
      repository.gate(gated);
      await until(() => p.held.length >= 3 && repository.gated >= 3, 'some responses and some stores were held back', 10_000);

      // Stop Redis with stores in flight, deterministically: keep it busy (a spinning script) so that
      // G's stores queue up in the socket, then queue a second spin behind them and send SIGTERM during
      // it. Redis runs G's stores and the second spin in one event-loop turn and shuts down at its
      // end: the stores are applied (and in the AOF) but never answered, as when Redis stops under load.
      const [first, second] = [await redis.blocker(), await redis.blocker()];
      const pidBefore = redis.pid;
      try {
        void first.busy(250);
        await sleep(50);
        void second.busy(500);
        const storesLetThrough = repository.gated;
        repository.open();
        await sleep(350);
        const inFlightAtStop = repository.inFlight;
        await redis.stop('SIGTERM');
        console.info(`[redis-restart] stopped with ${inFlightAtStop} stores in flight (${storesLetThrough} let through just before)`);
        expect(inFlightAtStop).toBeGreaterThan(0);
      } finally {
        first.close();
        second.close();
      }
      p.down = true;
      // Redis is down: the held responses and F's responses keep arriving.
      p.holding = false;
      p.release();
      await until(() => p.timers === 0, 'the responses due while Redis is down were delivered', 5_000);
      await sleep(300);
      expect(p.answeredWhileDown).toBeGreaterThanOrEqual(3);
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
      await Promise.race([manager.close(), sleep(3_000)]);
      await Promise.race([inner.close(), sleep(1_000)]);
      inner.redis.disconnect();
    }
  });
});
