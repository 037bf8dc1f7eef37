/**
 * The two-phase commit of the participants' transactions with in-process participants, the
 * participant runtime's hooks, and the minos parity additions that go with it: `run({ user })`
 * and the definition's saga-level `onSuccess` / `onFailure` callbacks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  InProcessBroker,
  ManualClock,
  ParticipantRuntime,
  Saga,
  SagaBusinessError,
  SagaFailedCommitError,
  SagaRequest,
  SagaStatus,
  type ParticipantRequestInfo,
} from '../../src/index.js';
import { closeManagers, collectingLogger, ManualBroker, managerWith, until } from '../support/harness.js';

afterEach(closeManagers);

/** What every service did, in order: its handlers and its hooks. */
function participants(options: { refuse?: string; failCommitTimes?: number } = {}) {
  const broker = new InProcessBroker();
  const log: string[] = [];
  const users: Array<string | undefined> = [];
  let commitFailures = options.failCommitTimes ?? 0;
  for (const service of ['inventory', 'payment']) {
    broker.participant(
      service,
      {
        [`${service}.do`]: (_c, info: ParticipantRequestInfo) => {
          users.push(info.user);
          log.push(`${service}.do`);
          return {};
        },
        [`${service}.undo`]: () => {
          log.push(`${service}.undo`);
          return {};
        },
      },
      {
        onReserve: () => {
          log.push(`${service} reserve`);
          if (options.refuse === service) throw new SagaBusinessError('not enough stock', { reason: 'audit' });
        },
        onCommit: () => {
          if (service === 'payment' && commitFailures-- > 0) throw new Error('ledger locked');
          log.push(`${service} commit`);
        },
        onReject: () => {
          log.push(`${service} reject`);
        },
      },
    );
  }
  return { broker, log, users };
}

const ORDER = new Saga('tpc-order', { commitRetryBackoffMs: 5 })
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.do', {}))
  .onFailure(() => new SagaRequest('inventory.undo', {}))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.do', {}))
  .onFailure(() => new SagaRequest('payment.undo', {}))
  .commit();

describe('the two-phase commit with in-process participants', () => {
  it('all reserve, then all commit; the execution records both phases', async () => {
    const { broker, log } = participants();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const done = await manager.run(ORDER);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(log).toEqual(['inventory.do', 'payment.do', 'inventory reserve', 'payment reserve', 'inventory commit', 'payment commit']);
    expect(done.transaction).toMatchObject({
      id: done.uuid,
      phase: null,
      reserve: { ok: true, parts: [{ service: 'inventory', outcome: 'yes' }, { service: 'payment', outcome: 'yes' }] },
      commit: { ok: true, parts: [{ service: 'inventory', outcome: 'ack' }, { service: 'payment', outcome: 'ack' }] },
    });
  });

  it('a refusal to reserve compensates the steps in reverse, rejects at every service, and throws SagaFailedCommitError naming the service', async () => {
    const { broker, log } = participants({ refuse: 'payment' });
    const manager = managerWith({ broker, logger: collectingLogger() });
    const failed = await manager.run(ORDER).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(SagaFailedCommitError);
    const error = failed as SagaFailedCommitError;
    expect(error).toMatchObject({ code: 'SAGA_FAILED_COMMIT', service: 'payment', refusal: { code: 'SAGA_COMMIT_REFUSED', answer: { status: 400 } } });
    expect(error.refusal?.answer?.content).toContain('audit');
    expect(error.message).toContain('payment refused to reserve');
    expect(error.execution.status).toBe(SagaStatus.Errored);
    expect(error.execution.error).toMatchObject({ step: null, code: 'SAGA_COMMIT_FAILED' });
    const afterVotes = log.slice(log.indexOf('payment reserve') + 1);
    expect(afterVotes).toEqual(['payment.undo', 'inventory.undo', 'inventory reject', 'payment reject']);
    expect(log.filter((l) => l.endsWith('commit'))).toEqual([]);
  });

  it('a commit that fails is sent again until it is acknowledged, and applied once', async () => {
    const { broker, log } = participants({ failCommitTimes: 3 });
    const manager = managerWith({ broker, logger: collectingLogger() });
    const done = await manager.run(ORDER);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(log.filter((l) => l === 'payment commit')).toHaveLength(1);
    expect(done.transaction.commit?.parts.find((p) => p.service === 'payment')).toMatchObject({ outcome: 'ack', attempts: 4 });
  });

  it('a service that does not vote within commitTimeoutMs fails the commit with SAGA_COMMIT_TIMEOUT', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const broker = new ManualBroker({ transactions: 'manual' });
    const saga = new Saga('tpc-timeout', { commitTimeoutMs: 2_000 }).remoteStep('a').onExecute(() => new SagaRequest('svc.a', {})).commit();
    const manager = managerWith({ broker, clock, logger: collectingLogger() });
    const running = manager.run(saga, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'a sent');
    broker.answer(broker.last('svc.a'));
    await until(() => broker.transactions.length === 1, 'reserve sent');
    expect(broker.transactions[0]).toMatchObject({ phase: 'reserve', target: 'svc', step: '$tx/svc', content: { transactionId: broker.transactions[0]!.uuid } });
    clock.advance(2_000);
    await until(() => broker.transactions.length === 2, 'reject sent');
    expect(broker.transactions[1]).toMatchObject({ phase: 'reject', target: 'svc' });
    broker.answer(broker.transactions[1]!, 200);
    const done = await running;
    expect(done.status).toBe(SagaStatus.Errored);
    expect(done.transaction.reserve?.refusal).toMatchObject({ service: 'svc', code: 'SAGA_COMMIT_TIMEOUT' });
    expect(done.transaction.reject).toMatchObject({ ok: true });
    // The vote that comes too late is a duplicate of a known part, not a foreign answer.
    broker.answer(broker.transactions[0]!, 200);
    await until(() => manager.stats().ignoredResponses.late + manager.stats().ignoredResponses.duplicate === 1, 'the late vote is ignored');
    expect(manager.stats().ignoredResponses.foreign).toBe(0);
  });

  it('a reject no service will ever acknowledge waits, sent again, until an operator resolves it by hand', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const broker = new ManualBroker({ transactions: 'manual' });
    const saga = new Saga('tpc-ghost', { commitTimeoutMs: 1_000, commitRetryBackoffMs: 100 })
      .remoteStep('a')
      .onExecute(() => new SagaRequest('svc.a', {}))
      .localStep('b')
      .onExecute(() => new Error('b fails'))
      .commit();
    const manager = managerWith({ broker, clock, logger: collectingLogger() });
    const running = manager.run(saga, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'a sent');
    // The answer names a related service that nothing serves.
    broker.deliver({ requestId: broker.requests[0]!.requestId, status: 200, content: {}, relatedServices: ['ghost'] });
    await until(() => broker.transactions.length === 2, 'reject sent to svc and ghost');
    expect(broker.transactions.map((t) => `${t.phase} ${t.target}`).sort()).toEqual(['reject ghost', 'reject svc']);
    broker.answer(broker.transactions.find((t) => t.target === 'svc')!, 200);
    for (let i = 0; i < 3; i++) {
      const sent = broker.transactions.length;
      clock.advance(1_000);
      await until(() => broker.transactions.length === sent + 1, `reject sent to ghost again (${i + 1})`);
    }
    const waiting = await manager.get((await manager.list({})).items[0]!.uuid);
    expect(waiting).toMatchObject({ status: SagaStatus.Paused, transaction: { phase: 'reject' } });
    await expect(manager.abort(waiting.uuid)).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    await expect(manager.resolveTransaction(waiting.uuid, 'nobody')).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    await manager.resolveTransaction(waiting.uuid, 'ghost', { note: 'service decommissioned' });
    const done = await running;
    expect(done.status).toBe(SagaStatus.Errored);
    expect(done.transaction.reject?.parts).toEqual([
      { service: 'svc', outcome: 'ack', attempts: 1 },
      { service: 'ghost', outcome: 'resolved', attempts: 4 },
    ]);
    expect(done.history).toEqual([{ action: 'resolve-transaction', at: expect.any(Number), step: '$tx/ghost', note: 'service decommissioned' }]);
  });

  it('an execution waiting for its commit decision is on disk, not in memory, and a decision finds it there', async () => {
    const { broker, log } = participants();
    const manager = managerWith({ broker, logger: collectingLogger(), pausedCacheSize: 0 });
    const waiting = await manager.run(ORDER, { autocommit: false });
    expect(waiting.awaitingCommit).toBe(true);
    expect(manager.stats()).toMatchObject({ live: 0, pausedCached: 0 });
    const done = await manager.commit(waiting.uuid);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(log.filter((l) => l.endsWith('commit'))).toEqual(['inventory commit', 'payment commit']);
  });

  it('autocommit: false waits for the decision; commit() twice answers the same finished execution', async () => {
    const { broker, log } = participants();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const waiting = await manager.run(ORDER, { autocommit: false });
    expect(waiting.awaitingCommit).toBe(true);
    expect(log).toEqual(['inventory.do', 'payment.do']);
    const [first, second] = await Promise.all([waiting.commit(), manager.commit(waiting.uuid)]);
    const third = await manager.commit(waiting.uuid, { note: 'again' });
    for (const e of [first, second, third]) expect(e.toJSON()).toEqual(first.toJSON());
    expect(first.status).toBe(SagaStatus.Finished);
    expect(log.filter((l) => l.endsWith('commit'))).toEqual(['inventory commit', 'payment commit']);
    expect(first.history.map((h) => h.action)).toEqual(['commit']);
    await expect(manager.reject(waiting.uuid)).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
  });

  it('a saga without remote steps, or with twoPhaseCommit: false, skips the phase', async () => {
    const { broker, log } = participants();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const local = new Saga('tpc-local').localStep('only').onExecute(() => undefined).commit();
    expect((await manager.run(local)).transaction).toEqual({ id: expect.any(String), phase: null });
    const off = new Saga('tpc-off', { twoPhaseCommit: false }).remoteStep('a').onExecute(() => new SagaRequest('inventory.do', {})).commit();
    const done = await manager.run(off);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(log).toEqual(['inventory.do']);
  });
});

describe('the participant runtime’s transaction hooks', () => {
  const info = (phase: 'reserve' | 'commit' | 'reject', attempt = 1): ParticipantRequestInfo => ({
    requestId: `tx-1/${phase}/${attempt}/$tx/stock`,
    uuid: 'tx-1',
    sagaName: 'order',
    target: 'stock',
    step: '$tx/stock',
    phase,
    attempt,
  });

  it('without hooks a service votes yes and acknowledges at once', async () => {
    const runtime = new ParticipantRuntime({ service: 'stock', handlers: {} });
    expect(await runtime.handle(null, info('reserve'))).toMatchObject({ status: 200 });
    expect(await runtime.handle(null, info('commit'))).toMatchObject({ status: 200 });
    expect(runtime.takes({ target: 'stock', phase: 'commit' })).toBe(true);
    expect(runtime.takes({ target: 'other', phase: 'commit' })).toBe(false);
  });

  it('votes no on false or a SagaBusinessError (remembered), and on anything else thrown (tried again)', async () => {
    let calls = 0;
    const no = new ParticipantRuntime({ service: 'stock', handlers: {}, onReserve: () => (calls++, false) });
    expect(await no.handle(null, info('reserve'))).toMatchObject({ status: 400, content: { vote: 'no' } });
    expect(await no.handle(null, info('reserve'))).toMatchObject({ status: 400 });
    expect(calls).toBe(1);
    const business = new ParticipantRuntime({ service: 'stock', handlers: {}, onReserve: () => { throw new SagaBusinessError('held', { why: 'audit' }); } });
    expect(await business.handle(null, info('reserve'))).toMatchObject({ status: 400, content: { why: 'audit' } });
    let crashes = 0;
    const crash = new ParticipantRuntime({ service: 'stock', handlers: {}, onReserve: () => { crashes++; throw new Error('db down'); } });
    expect(await crash.handle(null, info('reserve'))).toMatchObject({ status: 500, content: { code: 'SAGA_PARTICIPANT_FAILED', message: 'db down' } });
    await crash.handle(null, info('reserve'));
    expect(crashes).toBe(2);
  });

  it('runs onCommit once per transaction: a new attempt is answered from memory, under its own request id; a failed one runs again', async () => {
    const seen: string[] = [];
    let fail = true;
    const runtime = new ParticipantRuntime({
      service: 'stock',
      handlers: {},
      onCommit: (transactionId, request) => {
        seen.push(`${transactionId} ${request.attempt}`);
        if (fail) {
          fail = false;
          throw new Error('locked');
        }
      },
    });
    expect(await runtime.handle(null, info('commit', 1))).toMatchObject({ status: 500 });
    expect(await runtime.handle(null, info('commit', 2))).toMatchObject({ status: 200, requestId: 'tx-1/commit/2/$tx/stock' });
    const replay = await runtime.handle(null, info('commit', 3));
    expect(replay).toMatchObject({ status: 200, requestId: 'tx-1/commit/3/$tx/stock' });
    expect(seen).toEqual(['tx-1 1', 'tx-1 2']);
    expect(() => new ParticipantRuntime({ service: 'x', handlers: {}, onCommit: 'yes' as never })).toThrow(/onCommit must be a function/);
  });
});

describe('minos parity: run({ user }) and saga-level callbacks', () => {
  it('stores the user with the execution and sends it with every request, also after a pause on disk', async () => {
    const { broker, users } = participants();
    const manager = managerWith({ broker, logger: collectingLogger(), pausedCacheSize: 0 });
    const paused = await manager.run(ORDER, { user: 'alice@example.com', pauseOnDisk: true });
    const done = await manager.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.user).toBe('alice@example.com');
    expect(users).toEqual(['alice@example.com', 'alice@example.com']);
    expect((await manager.run(ORDER)).user).toBeNull();
    await expect(manager.run(ORDER, { user: '' })).rejects.toThrow(/user .* must be a string of 1 to 200 characters/);
  });

  it('onSuccess runs after the commit, onFailure after the rollback with its failure; a failing callback is recorded and changes nothing else', async () => {
    const { broker, log } = participants();
    const calls: string[] = [];
    const saga = new Saga('tpc-callbacks', {
      onSuccess: (ctx) => {
        calls.push(`success after ${log.at(-1)}`);
        ctx.notified = true;
      },
      onFailure: async (ctx, error) => {
        calls.push(`failure ${error.step} ${error.code} after ${log.at(-1)}`);
        ctx.alerted = error.code;
        if (ctx.get('throw', false)) throw new Error('pager down');
      },
    })
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('inventory.do', {}))
      .onFailure(() => new SagaRequest('inventory.undo', {}))
      .localStep('check')
      .onExecute((ctx) => (ctx.get('bad', false) ? new Error('bad order') : undefined))
      .commit();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const ok = await manager.run(saga);
    expect(ok.status).toBe(SagaStatus.Finished);
    expect(ok.context.get('notified')).toBe(true);
    const failed = await manager.run(saga, { context: { bad: true }, raiseOnError: false });
    expect(failed.status).toBe(SagaStatus.Errored);
    expect(failed.context.get('alerted')).toBe('SAGA_HANDLER_FAILED');
    expect(calls).toEqual(['success after inventory commit', 'failure check SAGA_HANDLER_FAILED after inventory reject']);
    const broken = await manager.run(saga, { context: { bad: true, throw: true }, raiseOnError: false });
    expect(broken.status).toBe(SagaStatus.Errored);
    expect(broken.callbackErrors.onFailure).toMatchObject({ message: 'pager down' });
    expect(broken.context.get('alerted', null)).toBeNull();
    expect(broken.error).toMatchObject({ step: 'check' });
    // The callbacks are part of the chart's shape: a definition without them hashes differently.
    expect(saga.hash).not.toBe(new Saga('tpc-callbacks').remoteStep('reserve').onExecute(() => undefined).onFailure(() => undefined).localStep('check').onExecute(() => undefined).commit().hash);
  });
});
