// Crash test (DESIGN §5, "No saga is lost or compensated twice across a crash"): an orchestrator
// in a child process runs 300 sagas of three remote steps against real WebSocket participants in
// another child process, one order in five refused at the third step; it is killed with SIGKILL at
// ten seeded random moments and started again each time. At the end every saga must be finished
// or errored with its compensations done, and the participants' ledgers must show no request
// applied twice and no compensation applied twice.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FileSagaRepository,
  RedisSagaRepository,
  SagaManager,
  SagaStatus,
  type RecoveryReport,
  type SagaExecution,
  type SagaRepository,
} from '../../src/index.js';
import { CRASH_SAGA, CRASH_SERVICES, CRASH_STEPS, crashUuid, failsAt, type LedgerEntry, type TransactionLedgerEntry } from '../support/crash-saga.js';
import { clearRedisPrefix } from '../support/clear-redis-prefix.js';
import { REDIS_URL } from '../support/redis.js';
import { ROOT } from '../support/run-script.js';
import { ChildScript } from '../support/child-script.js';

const SAGAS = 300;
const KILLS = 10;
/** Kill moments, in ms after the orchestrator says READY (its broker listens; recovery comes next). */
const KILL_AFTER_MS = [150, 700] as const;
const SETTLE_TIMEOUT_MS = 25_000;
const TEST_TIMEOUT_MS = 55_000;
/** Seeds of the kill moments; `CRASH_SEED=<n>` replays other ones. */
const SEEDS = { redis: 0x5a6a_0001, file: 0x5a6a_0002 } as const;

/** mulberry32: a tiny seeded PRNG, so that a failing run can be replayed with the same kill moments. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Variant {
  repo: 'redis' | 'file';
  env: Record<string, string>;
  /** The repository, opened in the test process (for File: only once no orchestrator holds it). */
  open(): Promise<SagaRepository>;
  cleanup(): Promise<void>;
}

async function redisVariant(): Promise<Variant> {
  const keyPrefix = `sagachart-test:crash-${randomBytes(6).toString('hex')}:`;
  const opened: RedisSagaRepository[] = [];
  return {
    repo: 'redis',
    env: { REPO: 'redis', REDIS_URL, KEY_PREFIX: keyPrefix },
    async open() {
      const repository = new RedisSagaRepository({ redis: REDIS_URL, keyPrefix });
      opened.push(repository);
      return repository;
    },
    async cleanup() {
      const repository = new RedisSagaRepository({ redis: REDIS_URL, keyPrefix });
      await clearRedisPrefix(repository.redis, repository.keyPrefix);
      await repository.close();
      for (const r of opened) await r.close();
    },
  };
}

async function fileVariant(): Promise<Variant> {
  const dir = await mkdtemp(join(tmpdir(), 'sagachart-crash-'));
  const opened: FileSagaRepository[] = [];
  return {
    repo: 'file',
    env: { REPO: 'file', DATA_DIR: dir },
    async open() {
      const repository = await FileSagaRepository.open({ dir });
      opened.push(repository);
      return repository;
    },
    async cleanup() {
      for (const r of opened) await r.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function countStatuses(repository: SagaRepository): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let cursor: string | null = null;
  do {
    const page = await repository.list({ cursor, limit: 500 });
    for (const item of page.items) counts[item.status] = (counts[item.status] ?? 0) + 1;
    cursor = page.cursor;
  } while (cursor);
  return counts;
}

const settledCount = (c: Record<string, number>) => (c[SagaStatus.Finished] ?? 0) + (c[SagaStatus.Errored] ?? 0);
const totalCount = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

type Recovered = RecoveryReport & { recoverMs: number; sinceStartMs: number; storedAtStart: number };

const children: ChildScript[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  // Every child this test started is ended by its own pid, whatever happened.
  const ended = children.splice(0);
  await Promise.all(ended.map((c) => c.stop('SIGKILL', 2_000)));
  // CRASH_LOG_DIR=/some/dir keeps every child's stdout and stderr, to study a failure.
  const logDir = process.env.CRASH_LOG_DIR;
  if (logDir) {
    await mkdir(logDir, { recursive: true });
    for (const c of ended) {
      const name = c.name.replace(/[^a-z0-9]+/gi, '-');
      await writeFile(join(logDir, `${name}.stdout`), c.lines.join('\n') + '\n');
      await writeFile(join(logDir, `${name}.stderr`), c.stderr);
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup().catch((err: unknown) => console.error('cleanup failed', err));
});

describe.each([
  { repo: 'redis' as const, make: redisVariant },
  { repo: 'file' as const, make: fileVariant },
])('crash recovery with the $repo repository', ({ repo, make }) => {
  it(
    `${SAGAS} sagas, ${KILLS} kills: none lost or stuck, no compensation or request applied twice`,
    async () => {
      const variant = await make();
      cleanups.push(() => variant.cleanup());
      const seed = Number(process.env.CRASH_SEED ?? SEEDS[repo]);
      const random = prng(seed);
      const port = await freePort();
      const tokens = Object.fromEntries(CRASH_SERVICES.map((s) => [s, randomBytes(12).toString('hex')]));
      const killDelays = Array.from({ length: KILLS }, () => Math.round(KILL_AFTER_MS[0] + random() * (KILL_AFTER_MS[1] - KILL_AFTER_MS[0])));
      // Paced so that the launches span about 80% of the ten lives: on a fast machine the last
      // sagas start shortly before the last kills, and every kill lands with sagas in flight (a
      // slow machine starts fewer per life and the last life starts the rest).
      const paceMs = Math.max(1, Math.floor((killDelays.reduce((a, b) => a + b, 0) * 0.8) / SAGAS));
      const orchestratorEnv = { ...variant.env, PORT: String(port), TOKENS: JSON.stringify(tokens), SAGAS: String(SAGAS), PACE_MS: String(paceMs) };
      const orchestratorFile = join(ROOT, 'test/support/crash-orchestrator.ts');

      const participants = new ChildScript(`${repo} participants`, join(ROOT, 'test/support/crash-participants.ts'), {
        URL: `ws://127.0.0.1:${port}`,
        TOKENS: JSON.stringify(tokens),
      });
      children.push(participants);

      const runs: ChildScript[] = [];
      const startOrchestrator = async (): Promise<ChildScript> => {
        const child = new ChildScript(`${repo} orchestrator #${runs.length + 1}`, orchestratorFile, orchestratorEnv);
        children.push(child);
        runs.push(child);
        await child.waitFor('READY', 20_000);
        return child;
      };

      // Ten lives, each ended by SIGKILL at a seeded moment.
      const killedAfter: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        const orchestrator = await startOrchestrator();
        const delay = killDelays[k]!;
        await sleep(delay);
        if (!orchestrator.running) throw new Error(`${orchestrator.name} ended on its own before its kill\n${orchestrator.tail()}`);
        if (!participants.running) throw new Error(`the participants ended on their own\n${participants.tail()}`);
        const exit = await orchestrator.stop('SIGKILL');
        expect(exit.signal, `${orchestrator.name} should die of SIGKILL`).toBe('SIGKILL');
        killedAfter.push(delay);
      }

      // The last life: left running until every saga is final.
      const last = await startOrchestrator();
      const settleStart = Date.now();
      let counts: Record<string, number> = {};
      const testRepository = variant.repo === 'redis' ? await variant.open() : null;
      for (;;) {
        if (!last.running) throw new Error(`${last.name} ended on its own\n${last.tail()}`);
        if (testRepository) counts = await countStatuses(testRepository);
        // The File store is owned by the orchestrator (its LOCK) while it runs: read its own count.
        else counts = last.tagged<Record<string, number>>('PROGRESS').at(-1) ?? {};
        if (totalCount(counts) === SAGAS && settledCount(counts) === SAGAS) break;
        if (Date.now() - settleStart > SETTLE_TIMEOUT_MS) {
          throw new Error(
            `after ${SETTLE_TIMEOUT_MS} ms, ${settledCount(counts)} of ${SAGAS} sagas are final (stored: ${JSON.stringify(counts)})\n${last.tail()}\n${participants.tail()}`,
          );
        }
        await sleep(100);
      }
      const settleMs = Date.now() - settleStart;

      // Stop cleanly (releases the File store's LOCK), then stop the participants: their ledger is
      // complete once their stdout has ended.
      const lastExit = await last.stop('SIGTERM');
      expect(lastExit, `the last orchestrator should close cleanly on SIGTERM\n${last.tail()}`).toEqual({ code: 0, signal: null });
      const participantsExit = await participants.stop('SIGTERM');
      expect(participantsExit, participants.tail()).toEqual({ code: 0, signal: null });
      const ledger = participants.tagged<LedgerEntry>('LEDGER');
      const participantStats = participants.tagged<Record<string, { handled: number; duplicates: number; reconnects: number }>>('STATS')[0] ?? {};

      // ---- The stored outcome, read by the test process itself ------------------------------
      const repository = testRepository ?? (await variant.open());
      const manager = new SagaManager({ repository, sagas: [CRASH_SAGA], recoverIntervalMs: 0, logger: {} });
      try {
        const stored: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await repository.list({ cursor, limit: 500 });
          stored.push(...page.items.map((i) => i.uuid));
          cursor = page.cursor;
        } while (cursor);
        const expectedUuids = Array.from({ length: SAGAS }, (_, i) => crashUuid(i));
        // None lost, none doubled.
        expect(stored.length).toBe(SAGAS);
        expect(new Set(stored)).toEqual(new Set(expectedUuids));

        const executions = new Map<string, SagaExecution>();
        for (const uuid of expectedUuids) executions.set(uuid, await manager.get(uuid));
        const byStatus: Record<string, string[]> = {};
        for (const e of executions.values()) (byStatus[e.status] ??= []).push(e.uuid);
        const failing = expectedUuids.filter((_, i) => failsAt(i));
        // None stuck; the errored ones are exactly the refused orders.
        expect(Object.keys(byStatus).sort()).toEqual([SagaStatus.Errored, SagaStatus.Finished]);
        expect(new Set(byStatus[SagaStatus.Errored])).toEqual(new Set(failing));
        expect(byStatus[SagaStatus.Finished]!.length).toBe(SAGAS - failing.length);

        for (const e of executions.values()) {
          const index = Number(e.uuid.slice('crash-'.length));
          const steps = Object.fromEntries(e.steps.map((s) => [s.path, s]));
          if (failsAt(index)) {
            expect(e.error, e.uuid).toMatchObject({ step: 'ship' });
            expect(steps.reserve, e.uuid).toMatchObject({ status: 'finished', compensated: true });
            expect(steps.charge, e.uuid).toMatchObject({ status: 'finished', compensated: true });
            expect(steps.ship, e.uuid).toMatchObject({ compensated: false, compensation: null });
          } else {
            expect(e.error, e.uuid).toBeNull();
            for (const { step } of CRASH_STEPS) expect(steps[step], `${e.uuid} ${step}`).toMatchObject({ status: 'finished', compensated: false, compensation: null });
            expect(e.context.get('reservationId'), e.uuid).toEqual(expect.any(String));
            expect(e.context.get('chargeId'), e.uuid).toEqual(expect.any(String));
          }
        }

        // ---- The participants' ledgers ------------------------------------------------------
        const byRequest = new Map<string, LedgerEntry[]>();
        for (const entry of ledger) byRequest.set(entry.requestId, [...(byRequest.get(entry.requestId) ?? []), entry]);
        const appliedTwice = [...byRequest.entries()].filter(([, entries]) => entries.length > 1).map(([id, entries]) => `${id} ×${entries.length}`);
        expect(appliedTwice, 'request ids whose handler ran more than once').toEqual([]);

        const perStepPhase = new Map<string, LedgerEntry[]>();
        for (const entry of ledger) {
          const key = `${entry.uuid} ${entry.step} ${entry.phase}`;
          perStepPhase.set(key, [...(perStepPhase.get(key) ?? []), entry]);
        }
        const count = (uuid: string, step: string, phase: 'execute' | 'compensate') => perStepPhase.get(`${uuid} ${step} ${phase}`)?.length ?? 0;
        const compensatedTwice = [...perStepPhase.entries()].filter(([key, entries]) => key.endsWith(' compensate') && entries.length > 1).map(([key]) => key);
        expect(compensatedTwice, '(uuid, step) compensated more than once').toEqual([]);
        // No step has a timeout or a retry, so each one is executed (at most) once, on attempt 1.
        const executedTwice = [...perStepPhase.entries()].filter(([key, entries]) => key.endsWith(' execute') && entries.length > 1).map(([key]) => key);
        expect(executedTwice, '(uuid, step) executed more than once').toEqual([]);
        expect(new Set(ledger.map((l) => l.attempt))).toEqual(new Set([1]));

        const wrong: string[] = [];
        for (const [i, uuid] of expectedUuids.entries()) {
          const want = failsAt(i)
            ? { reserve: [1, 1], charge: [1, 1], ship: [1, 0] }
            : { reserve: [1, 0], charge: [1, 0], ship: [1, 0] };
          for (const [step, [execute, compensate]] of Object.entries(want)) {
            const got = [count(uuid, step, 'execute'), count(uuid, step, 'compensate')];
            if (got[0] !== execute || got[1] !== compensate) wrong.push(`${uuid} ${step}: executed ${got[0]}×, compensated ${got[1]}× (want ${execute}×, ${compensate}×)`);
          }
        }
        expect(wrong, 'ledger vs. expected effects per saga').toEqual([]);
        expect(ledger.length).toBe(SAGAS * 3 + failing.length * 2);

        // ---- The two-phase commit: each service reserved and committed a finished saga's
        // transaction exactly once, and rejected an errored one's exactly once, across the kills.
        const transactions = participants.tagged<TransactionLedgerEntry>('TX');
        const hooks = new Map<string, number>();
        for (const t of transactions) hooks.set(`${t.uuid} ${t.service} ${t.phase}`, (hooks.get(`${t.uuid} ${t.service} ${t.phase}`) ?? 0) + 1);
        const wrongTx: string[] = [];
        for (const [i, uuid] of expectedUuids.entries()) {
          const want = failsAt(i) ? { reserve: 0, commit: 0, reject: 1 } : { reserve: 1, commit: 1, reject: 0 };
          for (const service of CRASH_SERVICES) {
            for (const [phase, times] of Object.entries(want)) {
              const got = hooks.get(`${uuid} ${service} ${phase}`) ?? 0;
              if (got !== times) wrongTx.push(`${uuid} ${service}: ${phase} ran ${got}× (want ${times}×)`);
            }
          }
          const e = executions.get(uuid)!;
          if (!failsAt(i)) expect(e.transaction, uuid).toMatchObject({ phase: null, reserve: { ok: true }, commit: { ok: true } });
          else expect(e.transaction, uuid).toMatchObject({ phase: null, reject: { ok: true } });
        }
        expect(wrongTx, 'transaction hooks vs. expected per saga and service').toEqual([]);
        expect(transactions.length).toBe((SAGAS - failing.length) * 3 * 2 + failing.length * 3);

        // ---- Figures ------------------------------------------------------------------------
        const recoveries = runs.flatMap((r) => r.tagged<Recovered>('RECOVERED'));
        const restarts = recoveries.slice(1); // the first life starts on an empty store
        const recoverMs = restarts.map((r) => r.recoverMs);
        const figures = {
          repo,
          seed: `0x${seed.toString(16)}`,
          sagas: SAGAS,
          finished: byStatus[SagaStatus.Finished]!.length,
          errored: byStatus[SagaStatus.Errored]!.length,
          kills: killedAfter.length,
          killedAfterMs: killedAfter,
          paceMs,
          launchedBeforeLastLife: last.tagged<Recovered>('RECOVERED')[0]?.storedAtStart,
          recoveries: recoveries.length,
          recovered: restarts.reduce((a, r) => a + r.recovered, 0),
          restarted: restarts.reduce((a, r) => a + r.restarted, 0),
          resent: recoveries.reduce((a, r) => a + r.resent, 0),
          recoveryFailed: recoveries.reduce((a, r) => a + r.failed.length, 0),
          recoverMsMax: Math.max(...recoverMs),
          recoverMsMean: Math.round(recoverMs.reduce((a, b) => a + b, 0) / Math.max(1, recoverMs.length)),
          ledger: ledger.length,
          duplicatesAnsweredFromMemory: Object.values(participantStats).reduce((a, s) => a + s.duplicates, 0),
          settleMs,
        };
        console.log(`CRASH FIGURES ${JSON.stringify(figures)}`);

        // The kills must have hit sagas in flight, or this test proves nothing.
        expect(recoveries.length, 'every life that reached recovery printed its report').toBeGreaterThanOrEqual(KILLS / 2);
        expect(figures.recovered, 'executions picked up by recover() across restarts').toBeGreaterThan(0);
        expect(restarts.filter((r) => r.recovered > 0).length, 'restarts that found sagas in flight').toBeGreaterThanOrEqual(KILLS / 2);
        expect(figures.recoveryFailed).toBe(0);
      } finally {
        await manager.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
