/**
 * The two-phase commit of the participants' transactions end to end, over real WebSocket
 * participants in another process (test/support/tx-participants.ts: inventory, payment, shipping,
 * and audit, which takes part only as a related service). Each participant writes a ledger line
 * per run of a handler or a two-phase-commit hook, and what its hooks hold (reserved, committed,
 * rejected transactions); the plan in the saga's context says how each behaves for that execution.
 * The orchestrator runs in this process, except in the crash tests, where it is a child process
 * (test/support/tx-orchestrator.ts) that kills itself with SIGKILL at an exact message of the
 * commit, is started again and recovers.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  formatRequestId,
  InMemorySagaRepository,
  RedisSagaRepository,
  SagaError,
  SagaFailedCommitError,
  SagaInvalidStateError,
  SagaManager,
  SagaRollbackError,
  SagaStatus,
  SagaStepStatus,
  WebSocketBroker,
  type Saga,
  type SagaExecution,
  type SagaRepository,
} from '../../src/index.js';
import { collectingLogger, rows, until } from '../support/harness.js';
import { cleanupRedis, REDIS_URL, redisRepository } from '../support/redis.js';
import { clearRedisPrefix } from '../support/clear-redis-prefix.js';
import { freePort } from '../support/redis-server.js';
import { ROOT } from '../support/run-script.js';
import { ChildScript } from '../support/child-script.js';
import { TX_ALL_SERVICES, TX_CRASH_SAGA, TX_SERVICES, txSaga, type TxLedgerEntry, type TxOrder, type TxPlan } from '../support/tx-saga.js';

const PARTICIPANTS = join(ROOT, 'test/support/tx-participants.ts');
const ORCHESTRATOR = join(ROOT, 'test/support/tx-orchestrator.ts');
const TOKENS = Object.fromEntries(TX_ALL_SERVICES.map((s) => [s, `tok-${s}-${randomBytes(6).toString('hex')}`]));
const STEP_OF = { inventory: 'reserve-stock', payment: 'charge', shipping: 'ship' } as const;

// ------------------------------------------------------------------------------------------------
// Cleanup: every child process is ended by its own pid, then managers, brokers and Redis keys.

const children: ChildScript[] = [];
const managers: SagaManager[] = [];
const brokers: WebSocketBroker[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL', 2_000)));
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await Promise.all(brokers.splice(0).map((b) => b.close()));
  for (const cleanup of cleanups.splice(0)) await cleanup().catch((err: unknown) => console.error('cleanup failed', err));
  await cleanupRedis();
});

interface Synced {
  stats: Record<string, { handled: number; duplicates: number; reconnects: number; connected: boolean }>;
  effects: Record<string, { reserved: string[]; committed: string[]; rejected: string[] }>;
}

function startParticipants(url: string): ChildScript {
  const child = new ChildScript('tx-participants', PARTICIPANTS, { URL: url, TOKENS: JSON.stringify(TOKENS) });
  children.push(child);
  return child;
}

/** What the participants did for one execution so far, in order; every line they wrote before the call is in. */
async function ledgerOf(participants: ChildScript, uuid: string): Promise<TxLedgerEntry[]> {
  await participants.sync();
  return participants.tagged<TxLedgerEntry>('LEDGER').filter((e) => e.uuid === uuid);
}

/** Waits until the participants' ledger of `uuid` satisfies `check`; returns it. */
async function untilLedger(participants: ChildScript, uuid: string, check: (ledger: TxLedgerEntry[]) => boolean, what: string, timeoutMs = 8_000): Promise<TxLedgerEntry[]> {
  let ledger: TxLedgerEntry[] = [];
  await until(
    async () => check((ledger = await ledgerOf(participants, uuid))),
    `${what} (ledger: ${JSON.stringify(ledger.map(show))})`,
    timeoutMs,
  );
  return ledger;
}

/** A ledger line as `service phase outcome`, `@attempt` when it is not the first. */
const show = (e: TxLedgerEntry) => `${e.service} ${e.phase} ${e.outcome}${e.attempt > 1 ? ` @${e.attempt}` : ''}`;
type HookEntry = Extract<TxLedgerEntry, { kind: 'hook' }>;
const hooks = (ledger: TxLedgerEntry[], phase?: string): HookEntry[] => ledger.filter((e): e is HookEntry => e.kind === 'hook' && (!phase || e.phase === phase));
const compensations = (ledger: TxLedgerEntry[]) => ledger.filter((e) => e.kind === 'handler' && e.phase === 'compensate');

/** An orchestrator in this process: a WebSocket broker on port 0, a manager, and the participants connected to it. */
async function orchestrate(sagas: Saga<TxOrder>[], options: { repository?: SagaRepository; pausedCacheSize?: number } = {}) {
  const logger = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: TOKENS, host: '127.0.0.1', port: 0, logger });
  brokers.push(broker);
  const repository = options.repository ?? new InMemorySagaRepository();
  const newManager = () => {
    const manager = new SagaManager({ broker, repository, sagas: sagas as never, logger, recoverIntervalMs: 0, ...(options.pausedCacheSize !== undefined ? { pausedCacheSize: options.pausedCacheSize } : {}) });
    managers.push(manager);
    return manager;
  };
  const participants = startParticipants(broker.url);
  await participants.waitFor('READY', 15_000);
  await until(() => broker.connectedServices().length === TX_ALL_SERVICES.length, 'every participant service is connected');
  return { broker, logger, participants, repository, manager: newManager(), newManager };
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but it resolved');
}

const part = (service: string, outcome: string, attempts = 1) => ({ service, outcome, attempts });
const context = (uuid: string, plan: TxPlan = {}): TxOrder => ({ order: uuid, plan });
const newUuid = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

/** The compensations ran in reverse order of the steps, each once, and then every service was told to reject, each once. */
function expectRollback(ledger: TxLedgerEntry[], services: readonly string[], compensated: readonly string[] = ['shipping', 'payment', 'inventory']) {
  expect(compensations(ledger).map(show)).toEqual(compensated.map((s) => `${s} compensate ok`));
  const rejects = hooks(ledger, 'reject');
  expect(rejects.map(show).sort()).toEqual(services.map((s) => `${s} reject applied`).sort());
  const lastCompensation = ledger.lastIndexOf(compensations(ledger).at(-1)!);
  expect(ledger.indexOf(rejects[0]!), 'the rejects go out after the last compensation').toBeGreaterThan(lastCompensation);
  expect(hooks(ledger, 'commit'), 'nothing is committed').toEqual([]);
}

// ------------------------------------------------------------------------------------------------

describe('two-phase commit over WebSocket participants in another process', () => {
  it('every service votes yes, then every service commits: each hook ran once for the transaction, all reserves before the first commit', async () => {
    const saga = txSaga('tx-happy', { commitTimeoutMs: 5_000 });
    const { manager, participants } = await orchestrate([saga]);
    const uuid = newUuid('happy');

    const execution = await manager.run(saga, { uuid, context: context(uuid, { related: ['audit'] }) });

    expect(execution.status).toBe(SagaStatus.Finished);
    const services = ['inventory', 'audit', 'payment', 'shipping'];
    expect(execution.services).toEqual(services);
    expect(execution.transaction).toEqual({
      id: uuid,
      phase: null,
      reserve: { ok: true, finishedAt: expect.any(Number), parts: services.map((s) => part(s, 'yes')) },
      commit: { ok: true, finishedAt: expect.any(Number), parts: services.map((s) => part(s, 'ack')) },
    });
    expect(execution.transaction.commit!.finishedAt).toBeGreaterThanOrEqual(execution.transaction.reserve!.finishedAt);
    expect(rows(execution)).toEqual(TX_SERVICES.map((s) => [STEP_OF[s], SagaStepStatus.Finished, false]));

    const ledger = await ledgerOf(participants, uuid);
    const tx = hooks(ledger);
    expect(tx.map(show).sort()).toEqual(services.flatMap((s) => [`${s} commit applied`, `${s} reserve yes`]).sort());
    const lastReserve = Math.max(...hooks(ledger, 'reserve').map((e) => ledger.indexOf(e)));
    const firstCommit = Math.min(...hooks(ledger, 'commit').map((e) => ledger.indexOf(e)));
    expect(lastReserve, 'no commit before every vote is in').toBeLessThan(firstCommit);
    for (const e of tx) expect(e.requestId).toBe(formatRequestId({ uuid, step: `$tx/${e.service}`, phase: e.phase, attempt: 1 }));
    expect(compensations(ledger)).toEqual([]);

    const { effects } = await participants.sync<Synced>();
    for (const s of services) expect(effects[s]!.committed, s).toEqual([uuid]);
    expect((await manager.get(uuid)).toJSON()).toEqual(execution.toJSON());
  });

  it.each(['false', 'throw', 'crash'] as const)('a service votes no (onReserve %s): the steps are compensated in reverse, every service is told to reject, run() throws SagaFailedCommitError', async (how) => {
    const saga = txSaga(`tx-refuse-${how}`, { commitTimeoutMs: 5_000 });
    const { manager, participants } = await orchestrate([saga]);
    const uuid = newUuid('refuse');

    const err = await rejection(manager.run(saga, { uuid, context: context(uuid, { voteNo: { service: 'payment', how } }) }));

    expect(err).toBeInstanceOf(SagaFailedCommitError);
    const failed = err as SagaFailedCommitError;
    expect(failed.code).toBe('SAGA_FAILED_COMMIT');
    expect(failed.service).toBe('payment');
    // A hook that failed (not a refusal) is a system error, over the wire as in process.
    const status = how === 'crash' ? 500 : 400;
    expect(failed.refusal).toEqual({
      service: 'payment',
      code: how === 'crash' ? 'SAGA_COMMIT_SYSTEM_ERROR' : 'SAGA_COMMIT_REFUSED',
      message: expect.stringContaining(`payment refused to reserve transaction ${uuid} (${status})`),
      answer: { status, content: expect.any(String) },
    });
    expect(JSON.parse(failed.refusal!.answer!.content)).toEqual(
      how === 'throw' ? { reason: 'out of stock', service: 'payment' } : how === 'crash' ? { code: 'SAGA_PARTICIPANT_FAILED', message: "payment's stock database is down" } : { vote: 'no' },
    );
    const execution = failed.execution;
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(execution.error).toMatchObject({ code: 'SAGA_COMMIT_FAILED', step: null });
    expect(rows(execution)).toEqual(TX_SERVICES.map((s) => [STEP_OF[s], SagaStepStatus.Finished, true]));
    expect(execution.transaction.reserve).toMatchObject({ ok: false, refusal: failed.refusal });
    expect(execution.transaction.reserve!.parts).toContainEqual(part('payment', 'no'));
    expect(execution.transaction.commit).toBeUndefined();
    expect(execution.transaction.reject).toEqual({ ok: true, finishedAt: expect.any(Number), parts: TX_SERVICES.map((s) => part(s, 'ack')) });

    const ledger = await ledgerOf(participants, uuid);
    expect(hooks(ledger, 'reserve').filter((e) => e.outcome === 'no').map(show)).toEqual(['payment reserve no']);
    expectRollback(ledger, TX_SERVICES);
    const { effects } = await participants.sync<Synced>();
    for (const s of TX_SERVICES) expect(effects[s]!.rejected, s).toEqual([uuid]);
    expect((await manager.get(uuid)).status).toBe(SagaStatus.Errored);
  });

  it('a service that does not vote within commitTimeoutMs counts as a refusal (SAGA_COMMIT_TIMEOUT): same rollback; its late yes is ignored', async () => {
    const saga = txSaga('tx-slow-vote', { commitTimeoutMs: 400 });
    const { manager, participants } = await orchestrate([saga]);
    const uuid = newUuid('slow');

    const started = Date.now();
    const err = await rejection(manager.run(saga, { uuid, context: context(uuid, { slowReserve: { service: 'shipping', ms: 1_200 } }) }));

    expect(err).toBeInstanceOf(SagaFailedCommitError);
    const failed = err as SagaFailedCommitError;
    expect(failed.service).toBe('shipping');
    expect(failed.refusal).toEqual({ service: 'shipping', code: 'SAGA_COMMIT_TIMEOUT', message: expect.stringContaining('did not answer the reserve') });
    const execution = failed.execution;
    expect(execution.transaction.reserve!.finishedAt - started, 'the reserve waited for commitTimeoutMs, not for the slow vote').toBeLessThan(1_200);
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(execution.error?.code).toBe('SAGA_COMMIT_FAILED');
    expect(execution.transaction.reserve!.parts).toEqual([part('inventory', 'yes'), part('payment', 'yes'), part('shipping', 'timeout')]);
    expect(rows(execution)).toEqual(TX_SERVICES.map((s) => [STEP_OF[s], SagaStepStatus.Finished, true]));
    // Shipping's reject waits for its reserve hook to end (and is sent again meanwhile): it must drop what the reserve makes.
    const reject = execution.transaction.reject!;
    expect(reject).toMatchObject({ ok: true, parts: [part('inventory', 'ack'), part('payment', 'ack'), { service: 'shipping', outcome: 'ack' }] });
    expect(reject.parts[2]!.attempts).toBeGreaterThan(1);
    const ledger = await ledgerOf(participants, uuid);
    expectRollback(ledger, TX_SERVICES);
    expect(hooks(ledger).filter((e) => e.service === 'shipping').map(show), 'the late yes, then the reject').toEqual(['shipping reserve yes', 'shipping reject applied']);

    // The late yes (and the answers to the reject's earlier attempts) reached the orchestrator and changed nothing.
    // (They are counted as `foreign` and logged as warnings today, as no step of the chart is named `$tx/…`.)
    const ignored = manager.stats().ignoredResponses;
    expect(ignored.duplicate + ignored.late + ignored.foreign, 'the late answers are ignored').toBeGreaterThanOrEqual(1);
    expect((await manager.get(uuid)).toJSON()).toEqual(execution.toJSON());
    const { effects } = await participants.sync<Synced>();
    expect(effects.shipping, 'shipping holds nothing of the rejected transaction').toEqual({ reserved: [], committed: [], rejected: [uuid] });
  });

  it('an onCommit that throws is sent the commit again (backoff) until it acknowledges; the commit is applied once', async () => {
    const saga = txSaga('tx-failing-commit', { commitTimeoutMs: 5_000, commitRetryBackoffMs: 50 });
    const { manager, participants } = await orchestrate([saga]);
    const uuid = newUuid('fail-commit');

    const execution = await manager.run(saga, { uuid, context: context(uuid, { failCommit: { service: 'payment', times: 2 } }) });

    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.transaction.commit).toEqual({ ok: true, finishedAt: expect.any(Number), parts: [part('inventory', 'ack'), part('payment', 'ack', 3), part('shipping', 'ack')] });
    const ledger = await ledgerOf(participants, uuid);
    expect(hooks(ledger, 'commit').filter((e) => e.service === 'payment').map(show)).toEqual(['payment commit failed', 'payment commit failed @2', 'payment commit applied @3']);
    expect(hooks(ledger, 'commit').filter((e) => e.service !== 'payment').map(show).sort()).toEqual(['inventory commit applied', 'shipping commit applied']);
    const { effects } = await participants.sync<Synced>();
    for (const s of TX_SERVICES) expect(effects[s]!.committed, s).toEqual([uuid]);
  });

  it('an onCommit that answers after commitTimeoutMs is sent the commit again as a new attempt; its hook ran once', async () => {
    const saga = txSaga('tx-late-commit', { commitTimeoutMs: 500, commitRetryBackoffMs: 50 });
    const { manager, participants } = await orchestrate([saga]);
    const uuid = newUuid('late-commit');

    const execution = await manager.run(saga, { uuid, context: context(uuid, { lateCommit: { service: 'shipping', ms: 750, times: 1 } }) });

    expect(execution.status).toBe(SagaStatus.Finished);
    const parts = execution.transaction.commit!.parts;
    expect(parts.filter((p) => p.service !== 'shipping')).toEqual([part('inventory', 'ack'), part('payment', 'ack')]);
    expect(parts.find((p) => p.service === 'shipping')).toMatchObject({ outcome: 'ack', attempts: expect.any(Number) });
    expect(parts.find((p) => p.service === 'shipping')!.attempts, 'the commit was sent again').toBeGreaterThan(1);
    const ledger = await ledgerOf(participants, uuid);
    const shipping = hooks(ledger, 'commit').filter((e) => e.service === 'shipping');
    expect(shipping.map(show), 'one run, started by the first attempt; the second was answered with its outcome').toEqual(['shipping commit applied']);
    expect(shipping[0]!.ms).toBeGreaterThanOrEqual(700);
    const { effects, stats } = await participants.sync<Synced>();
    expect(effects.shipping!.committed).toEqual([uuid]);
    expect(stats.shipping!.duplicates).toBeGreaterThanOrEqual(1);
  });
});

// ------------------------------------------------------------------------------------------------
// Commit decisions and operator actions, on an execution live in the manager that runs it, and on
// one paused on disk: run with pauseOnDisk on Redis, then that manager closed and another one
// (pausedCacheSize 0, recover() at start) takes over the same repository and broker, so that
// every action restores the execution from its stored record.

type Mode = 'live' | 'paused on disk';

async function setup(mode: Mode, sagas: Saga<TxOrder>[]) {
  const repository = mode === 'live' ? new InMemorySagaRepository() : redisRepository();
  const env = await orchestrate(sagas, { repository, ...(mode === 'live' ? {} : { pausedCacheSize: 0 }) });
  let manager = env.manager;
  /** The run() of each live execution: it resolves when the execution ends (or awaits its commit). */
  const runs = new Map<string, Promise<SagaExecution>>();
  return {
    participants: env.participants,
    get manager() {
      return manager;
    },
    runs,
    /** Starts an execution; resolves once it is under way (live) or stored paused (on disk). */
    async start(saga: Saga<TxOrder>, uuid: string, plan: TxPlan, options: { autocommit?: boolean } = {}): Promise<void> {
      const autocommit = options.autocommit ?? true;
      if (mode === 'live') {
        const run = manager.run(saga, { uuid, context: context(uuid, plan), autocommit, raiseOnError: false });
        run.catch(() => undefined);
        runs.set(uuid, run);
        return;
      }
      await manager.run(saga, { uuid, context: context(uuid, plan), autocommit, pauseOnDisk: true });
    },
    /** On disk: the manager that ran the execution goes away and a new one takes over from the repository. */
    async takeOver(): Promise<void> {
      if (mode === 'live') return;
      await manager.close();
      manager = env.newManager();
      await manager.recover();
    },
    /** On disk: the manager holds nothing of it in memory (the next action restores it from its record). */
    expectOnDiskOnly(): void {
      if (mode !== 'live') expect(manager.stats(), 'nothing of the execution is in memory').toMatchObject({ live: 0, pausedCached: 0 });
    },
    final: (uuid: string) => manager.waitFor(uuid, { timeoutMs: 10_000 }),
  };
}

/** `fn` is refused with SAGA_INVALID_STATE. */
async function expectInvalidState(fn: () => Promise<unknown>, what: string): Promise<void> {
  const err = await rejection(fn());
  expect(err, what).toBeInstanceOf(SagaInvalidStateError);
  expect((err as SagaError).code, what).toBe('SAGA_INVALID_STATE');
}

const MODES: Mode[] = ['live', 'paused on disk'];

describe.each(MODES)('commit decisions (autocommit: false) on an execution %s', (mode) => {
  const saga = txSaga(`tx-decide`, { commitTimeoutMs: 5_000 });

  async function awaitingCommit(env: Awaited<ReturnType<typeof setup>>, uuid: string): Promise<SagaExecution> {
    await env.start(saga, uuid, {}, { autocommit: false });
    if (mode === 'live') return env.runs.get(uuid)!;
    await until(async () => (await env.manager.get(uuid)).awaitingCommit, 'the execution awaits its commit decision');
    await env.takeOver();
    env.expectOnDiskOnly();
    return env.manager.get(uuid);
  }

  it('commit(), twice: the two-phase commit runs once, and the second call answers the same finished execution', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('commit');
    const waiting = await awaitingCommit(env, uuid);
    expect(waiting).toMatchObject({ status: SagaStatus.Paused, awaitingCommit: true, transaction: { id: uuid, phase: null } });
    expect(waiting.transaction.reserve, 'no reserve before the decision').toBeUndefined();
    expect(hooks(await ledgerOf(env.participants, uuid)), 'no participant was asked anything yet').toEqual([]);

    const first = await env.manager.commit(uuid, { note: 'approved' });
    const second = await waiting.commit();

    expect(first.status).toBe(SagaStatus.Finished);
    expect(first.transaction).toMatchObject({ phase: null, reserve: { ok: true }, commit: { ok: true, parts: TX_SERVICES.map((s) => part(s, 'ack')) } });
    expect(first.history).toEqual([{ action: 'commit', at: expect.any(Number), note: 'approved' }]);
    expect(second.toJSON(), 'the repeat answers the same execution').toEqual(first.toJSON());
    const ledger = await ledgerOf(env.participants, uuid);
    expect(hooks(ledger).map(show).sort()).toEqual(TX_SERVICES.flatMap((s) => [`${s} commit applied`, `${s} reserve yes`]).sort());
    await expectInvalidState(() => env.manager.reject(uuid), 'reject() after commit()');
    await expectInvalidState(() => env.manager.rollback(uuid), 'rollback() after commit()');
    expect((await env.manager.get(uuid)).toJSON()).toEqual(first.toJSON());
  });

  it('reject(), twice: the steps are compensated in reverse and every service rejects, once; the second call answers the same errored execution', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('reject');
    const waiting = await awaitingCommit(env, uuid);

    const first = await waiting.reject();
    const second = await env.manager.reject(uuid, { note: 'asked again' });

    expect(first.status).toBe(SagaStatus.Errored);
    expect(first.error).toMatchObject({ code: 'SAGA_REJECTED', step: null });
    expect(rows(first)).toEqual(TX_SERVICES.map((s) => [STEP_OF[s], SagaStepStatus.Finished, true]));
    expect(first.transaction).toEqual({ id: uuid, phase: null, reject: { ok: true, finishedAt: expect.any(Number), parts: TX_SERVICES.map((s) => part(s, 'ack')) } });
    expect(first.history).toEqual([{ action: 'reject', at: expect.any(Number) }]);
    expect(second.toJSON(), 'the repeat answers the same execution').toEqual(first.toJSON());
    const ledger = await ledgerOf(env.participants, uuid);
    expectRollback(ledger, TX_SERVICES);
    expect(hooks(ledger, 'reserve'), 'nothing was reserved').toEqual([]);
    await expectInvalidState(() => env.manager.commit(uuid), 'commit() after reject()');
  });
});

describe.each(MODES)('operator actions over the wire on an execution %s', (mode) => {
  const saga = txSaga('tx-operate', { commitTimeoutMs: 5_000, commitRetryBackoffMs: 250 });

  it('abort(uuid, { note }) while a step waits: that step and the ones before are compensated in reverse, then every service rejects; the repeat answers the same', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('abort');
    await env.start(saga, uuid, { hangExecute: { service: 'shipping', attempts: 99 } });
    await untilLedger(env.participants, uuid, (l) => l.some((e) => e.service === 'shipping' && e.outcome === 'hung'), 'shipping holds the request');
    await env.takeOver();
    env.expectOnDiskOnly();

    const aborted = await env.manager.abort(uuid, { note: 'customer cancelled' });

    expect(aborted.status).toBe(SagaStatus.Errored);
    expect(aborted.error).toMatchObject({ code: 'SAGA_ABORTED', step: null, message: expect.stringContaining('customer cancelled') });
    expect(aborted.history).toEqual([{ action: 'abort', at: expect.any(Number), note: 'customer cancelled' }]);
    expect(aborted.steps.map((s) => [s.path, s.compensated])).toEqual(TX_SERVICES.map((s) => [STEP_OF[s], true]));
    expect(aborted.transaction).toEqual({ id: uuid, phase: null, reject: { ok: true, finishedAt: expect.any(Number), parts: TX_SERVICES.map((s) => part(s, 'ack')) } });
    const ledger = await ledgerOf(env.participants, uuid);
    expectRollback(ledger, TX_SERVICES);
    expect(hooks(ledger, 'reserve'), 'the commit never started').toEqual([]);

    const again = await env.manager.abort(uuid, { note: 'clicked twice' });
    expect(again.toJSON()).toEqual(aborted.toJSON());
    if (mode === 'live') expect((await env.runs.get(uuid)!).toJSON(), 'run() ends with the rollback').toEqual(aborted.toJSON());
    await expectInvalidState(() => env.manager.retryStep(uuid, 'ship'), 'retryStep() of an aborted execution');
  });

  it('abort() during the reserve: no commit is sent, the steps are compensated, every service rejects (the slow voter after its vote)', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('abort-reserve');
    await env.start(saga, uuid, { slowReserve: { service: 'shipping', ms: 800 } });
    await untilLedger(env.participants, uuid, (l) => hooks(l, 'reserve').length === 2, 'inventory and payment voted; shipping has not yet');
    expect((await env.manager.get(uuid)).transaction.phase).toBe('reserve');
    await env.takeOver();

    const aborted = await env.manager.abort(uuid, { note: 'stop it' });

    expect(aborted.status).toBe(SagaStatus.Errored);
    expect(aborted.error?.code).toBe('SAGA_ABORTED');
    expect(aborted.transaction.reserve, 'the reserve was left, not finished').toBeUndefined();
    expect(aborted.transaction.commit).toBeUndefined();
    expect(aborted.transaction.reject).toMatchObject({ ok: true });
    const ledger = await ledgerOf(env.participants, uuid);
    expectRollback(ledger, TX_SERVICES);
    expect(hooks(ledger).filter((e) => e.service === 'shipping').map(show)).toEqual(['shipping reserve yes', 'shipping reject applied']);
    const { effects } = await env.participants.sync<Synced>();
    for (const s of TX_SERVICES) expect(effects[s], s).toEqual({ reserved: [], committed: [], rejected: [uuid] });
  });

  it('retryStep(uuid, step): a new attempt of the waiting request reaches the participant, and the saga goes on to commit', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('retry-step');
    await env.start(saga, uuid, { hangExecute: { service: 'payment', attempts: 1 } });
    await untilLedger(env.participants, uuid, (l) => l.some((e) => e.service === 'payment' && e.outcome === 'hung'), 'payment holds the first attempt');
    await env.takeOver();
    env.expectOnDiskOnly();
    await expectInvalidState(() => env.manager.retryStep(uuid, 'reserve-stock'), 'retryStep() of a step that does not wait');

    const retried = await env.manager.retryStep(uuid, 'charge', { note: 'payment is back' });

    expect(retried.step('charge')!.status).toBe(SagaStepStatus.PausedByOnExecute);
    const finished = await env.final(uuid);
    expect(finished.status).toBe(SagaStatus.Finished);
    expect(finished.step('charge')).toMatchObject({ status: SagaStepStatus.Finished, attempts: 2 });
    expect(finished.history).toEqual([{ action: 'retry-step', at: expect.any(Number), step: 'charge', note: 'payment is back' }]);
    expect(finished.transaction).toMatchObject({ reserve: { ok: true }, commit: { ok: true, parts: TX_SERVICES.map((s) => part(s, 'ack')) } });
    const ledger = await ledgerOf(env.participants, uuid);
    const payment = ledger.filter((e) => e.kind === 'handler' && e.service === 'payment');
    expect(payment.map((e) => [e.attempt, e.outcome, e.requestId])).toEqual([
      [1, 'hung', formatRequestId({ uuid, step: 'charge', phase: 'execute', attempt: 1 })],
      [2, 'ok', formatRequestId({ uuid, step: 'charge', phase: 'execute', attempt: 2 })],
    ]);
    expect(hooks(ledger, 'commit').map(show).sort()).toEqual(TX_SERVICES.map((s) => `${s} commit applied`));
  });

  it('retryCompensation(uuid, step) of a failed compensation runs it again; the services were told to reject once', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('retry-comp');
    await env.start(saga, uuid, { refuseExecute: 'shipping', failCompensation: { service: 'payment', times: 1 } });
    if (mode !== 'live') await until(async () => (await env.manager.get(uuid)).status === SagaStatus.Errored, 'the rollback ends', 8_000);
    await env.takeOver();
    const errored = await env.final(uuid);
    expect(errored.status).toBe(SagaStatus.Errored);
    expect(errored.step('charge')).toMatchObject({ status: SagaStepStatus.ErroredOnFailure, compensated: false, compensation: { error: { code: 'SAGA_PARTICIPANT_REJECTED' }, resolved: false } });
    expect(errored.step('reserve-stock')!.compensated, 'the rollback went on past the failed compensation').toBe(true);
    expect(errored.transaction.reject).toMatchObject({ ok: true });
    await expectInvalidState(() => env.manager.retryCompensation(uuid, 'reserve-stock'), 'retryCompensation() of a compensation that did not fail');

    const retried = await env.manager.retryCompensation(uuid, 'charge', { note: 'refund service fixed' });

    expect(retried.status).toBe(SagaStatus.Errored);
    expect(retried.step('charge')).toMatchObject({ compensated: true, compensation: { error: null } });
    expect(retried.history).toEqual([{ action: 'retry-compensation', at: expect.any(Number), step: 'charge', note: 'refund service fixed' }]);
    const ledger = await ledgerOf(env.participants, uuid);
    expect(compensations(ledger).map(show)).toEqual(['payment compensate failed', 'inventory compensate ok', 'payment compensate ok @2']);
    expect(hooks(ledger).map(show).sort(), 'each service rejected once').toEqual(TX_SERVICES.map((s) => `${s} reject applied`));
    await expectInvalidState(() => env.manager.retryCompensation(uuid, 'charge'), 'retryCompensation() of a compensation that succeeded since');
  });

  it('abort() with a compensation that fails throws SagaRollbackError; resolveCompensation(uuid, step, { note }) marks it dealt with', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('resolve');
    await env.start(saga, uuid, { hangExecute: { service: 'shipping', attempts: 99 }, failCompensation: { service: 'payment', times: 99 } });
    await untilLedger(env.participants, uuid, (l) => l.some((e) => e.service === 'shipping' && e.outcome === 'hung'), 'shipping holds the request');
    await env.takeOver();
    env.expectOnDiskOnly();

    const err = await rejection(env.manager.abort(uuid));
    expect(err).toBeInstanceOf(SagaRollbackError);
    expect((err as SagaRollbackError).steps).toEqual(['charge']);
    expect((err as SagaRollbackError).execution.status).toBe(SagaStatus.Errored);
    await expectInvalidState(() => env.manager.resolveCompensation(uuid, 'ship'), 'resolveCompensation() of a compensation that did not fail');

    const resolved = await env.manager.resolveCompensation(uuid, 'charge', { note: 'refunded by hand' });

    expect(resolved.status).toBe(SagaStatus.Errored);
    expect(resolved.step('charge')).toMatchObject({ status: SagaStepStatus.ErroredOnFailure, compensated: false, compensation: { resolved: true } });
    expect(resolved.history.map((h) => [h.action, h.step, h.note])).toEqual([
      ['abort', undefined, undefined],
      ['resolve-compensation', 'charge', 'refunded by hand'],
    ]);
    const ledger = await ledgerOf(env.participants, uuid);
    expect(compensations(ledger).map(show)).toEqual(['shipping compensate ok', 'payment compensate failed', 'inventory compensate ok']);
    expect(hooks(ledger).map(show).sort()).toEqual(TX_SERVICES.map((s) => `${s} reject applied`));
    await expectInvalidState(() => env.manager.resolveCompensation(uuid, 'charge'), 'resolveCompensation() twice');
    await expectInvalidState(() => env.manager.retryCompensation(uuid, 'charge'), 'retryCompensation() of a resolved compensation');
  });

  it('refusals: abort() once the commit is under way, and every action on a finished execution, with SAGA_INVALID_STATE', async () => {
    const env = await setup(mode, [saga]);
    const uuid = newUuid('refusals');
    await env.start(saga, uuid, { failCommit: { service: 'payment', times: 2 } });
    await untilLedger(env.participants, uuid, (l) => l.some((e) => e.service === 'payment' && e.phase === 'commit'), 'the commit is under way');
    await env.takeOver();
    expect((await env.manager.get(uuid)).transaction.phase).toBe('commit');

    await expectInvalidState(() => env.manager.abort(uuid, { note: 'too late' }), 'abort() while committing');
    await expectInvalidState(() => env.manager.reject(uuid), 'reject() while committing');

    const finished = await env.final(uuid);
    expect(finished.status).toBe(SagaStatus.Finished);
    expect(finished.history, 'refused actions leave no trace').toEqual([]);
    // Two failed commits, then the ack: on attempt 3, or on attempt 2 when the recovery of the
    // take-over re-sent attempt 1 (same request id) and the hook failed a second time on it.
    const paymentPart = finished.transaction.commit!.parts.find((p) => p.service === 'payment');
    expect(paymentPart).toMatchObject({ outcome: 'ack' });
    expect(paymentPart!.attempts).toBeGreaterThanOrEqual(mode === 'live' ? 3 : 2);
    expect(paymentPart!.attempts).toBeLessThanOrEqual(3);
    await expectInvalidState(() => env.manager.abort(uuid), 'abort() of a finished execution');
    await expectInvalidState(() => env.manager.commit(uuid), 'commit() of an execution that did not await one');
    await expectInvalidState(() => env.manager.reject(uuid), 'reject() of a finished execution');
    await expectInvalidState(() => env.manager.retryStep(uuid, 'charge'), 'retryStep() of a finished execution');
    await expectInvalidState(() => env.manager.retryCompensation(uuid, 'charge'), 'retryCompensation() of a finished execution');
    await expectInvalidState(() => env.manager.resolveCompensation(uuid, 'charge'), 'resolveCompensation() of a finished execution');
    expect((await env.manager.get(uuid)).toJSON()).toEqual(finished.toJSON());
    const ledger = await ledgerOf(env.participants, uuid);
    expect(hooks(ledger, 'commit').map(show)).toContain('payment commit failed @2');
    expect(hooks(ledger, 'commit').filter((e) => e.outcome === 'applied').map((e) => e.service).sort(), 'each commit applied once').toEqual([...TX_SERVICES]);
    expect(hooks(ledger, 'reject')).toEqual([]);
    expect(compensations(ledger)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------

/** Resolves when the child exits; throws after `timeoutMs`. */
async function exitOf(child: ChildScript, timeoutMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} did not exit within ${timeoutMs} ms\n${child.tail()}`)), timeoutMs);
  });
  try {
    return await Promise.race([child.closed, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Sent {
  phase: string;
  service: string;
  requestId: string;
  attempt: number;
}

describe('SIGKILL of the orchestrator (a child process, Redis repository) in the middle of the commit', () => {
  it.each([
    // Every vote is stored and the commit decided; no commit message has left.
    { kill: 'commit:1', when: 'between reserve and commit', committedBefore: [] as string[] },
    // inventory's commit was sent and carried out (its ack reached the orchestrator); payment's and shipping's were not sent.
    { kill: 'commit:2', when: 'between two commit messages', committedBefore: ['inventory'] },
  ])('killed $when ($kill): after a restart and recover(), every service committed exactly once and the execution is finished', async ({ kill, committedBefore }) => {
    const keyPrefix = `sagachart-test:tx-crash-${randomBytes(6).toString('hex')}:`;
    cleanups.push(async () => {
      const repository = new RedisSagaRepository({ redis: REDIS_URL, keyPrefix });
      await clearRedisPrefix(repository.redis, repository.keyPrefix);
      await repository.close();
    });
    const port = await freePort();
    const uuid = newUuid('crash');
    const env = { PORT: String(port), TOKENS: JSON.stringify(TOKENS), REDIS_URL, KEY_PREFIX: keyPrefix, RUN_UUID: uuid, PLAN: '{}' };

    // Life 1: runs the saga and dies at the kill point.
    const first = new ChildScript('tx-orchestrator #1', ORCHESTRATOR, { ...env, KILL: kill });
    children.push(first);
    await first.waitFor('READY', 15_000);
    const participants = startParticipants(`ws://127.0.0.1:${port}`);
    await participants.waitFor('READY', 15_000);
    expect(await exitOf(first, 15_000), `${first.name} dies of SIGKILL at ${kill}`).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.lines.some((l) => l.startsWith('KILLING ')), 'it died at the kill point').toBe(true);
    const sentBefore = first.tagged<Sent>('SENT').filter((s) => s.phase === 'commit');
    expect(sentBefore.map((s) => s.service), 'commits sent before the kill').toEqual(committedBefore);

    // What the store holds: every vote in, the commit decided and not done.
    const reader = new SagaManager({ repository: new RedisSagaRepository({ redis: REDIS_URL, keyPrefix }), sagas: [TX_CRASH_SAGA], recoverIntervalMs: 0, logger: collectingLogger() });
    managers.push(reader);
    cleanups.push(() => reader.repository.close());
    const stored = await reader.get(uuid);
    expect(stored.status).toBe(SagaStatus.Paused);
    expect(stored.transaction).toEqual({ id: uuid, phase: 'commit', reserve: { ok: true, finishedAt: expect.any(Number), parts: TX_SERVICES.map((s) => part(s, 'yes')) } });
    const atKill = await ledgerOf(participants, uuid);
    expect(hooks(atKill, 'reserve').map(show).sort()).toEqual(TX_SERVICES.map((s) => `${s} reserve yes`));
    expect(hooks(atKill, 'commit').map(show), 'commits carried out before the kill').toEqual(committedBefore.map((s) => `${s} commit applied`));

    // Life 2: recovers, sends the stored commits again, and the execution finishes.
    const second = new ChildScript('tx-orchestrator #2', ORCHESTRATOR, { ...env, WAIT: '1' });
    children.push(second);
    const final = JSON.parse((await second.waitFor('FINAL', 15_000)).slice('FINAL '.length)) as ReturnType<SagaExecution['toJSON']>;
    expect(final.status).toBe(SagaStatus.Finished);
    expect(final.transaction).toMatchObject({ phase: null, reserve: { ok: true }, commit: { ok: true } });
    expect(final.transaction.commit!.parts.map((p) => [p.service, p.outcome])).toEqual(TX_SERVICES.map((s) => [s, 'ack']));
    expect(second.tagged<{ resent: number }>('RECOVERED')[0]!.resent, 'recover() sent the stored commits again').toBeGreaterThanOrEqual(1);
    const resent = second.tagged<Sent>('SENT').filter((s) => s.phase === 'commit' && s.attempt === 1);
    expect(resent.map((s) => s.requestId).sort(), 'the same messages as before the kill').toEqual(TX_SERVICES.map((s) => formatRequestId({ uuid, step: `$tx/${s}`, phase: 'commit', attempt: 1 })).sort());

    const ledger = await ledgerOf(participants, uuid);
    for (const service of TX_SERVICES) {
      const mine = hooks(ledger).filter((e) => e.service === service);
      expect(mine.map((e) => `${e.phase} ${e.outcome}`), `${service}: reserved once, committed once`).toEqual(['reserve yes', 'commit applied']);
    }
    const { effects, stats } = await participants.sync<Synced>();
    for (const s of TX_SERVICES) expect(effects[s], s).toEqual({ reserved: [uuid], committed: [uuid], rejected: [] });
    for (const s of committedBefore) expect(stats[s]!.duplicates, `${s} answered the commit sent again from memory`).toBeGreaterThanOrEqual(1);
    expect(await second.stop('SIGTERM'), `${second.name} closes cleanly\n${second.tail()}`).toEqual({ code: 0, signal: null });
    expect((await reader.get(uuid)).status).toBe(SagaStatus.Finished);
  });
});
