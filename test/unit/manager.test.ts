import { describe, expect, it } from 'vitest';
import { createInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import {
  InMemorySagaRepository,
  Saga,
  SagaDefinitionMismatchError,
  SagaExecutionNotFoundError,
  SagaFailedExecutionError,
  SagaManager,
  SagaManagerClosedError,
  SagaRequest,
  SagaResponse,
  SagaSnapshotError,
  SagaStatus,
  SagaStepStatus,
  SagaUnknownRequestError,
  SagaAlreadyRunningError,
  type SagaRecord,
} from '../../src/index.js';
import { CorruptibleInMemoryRepository } from '../support/corruptible-repository.js';
import { collectingLogger, ManualBroker, recordingBroker, until } from '../support/harness.js';
import { RecordingInProcessBroker } from '../support/recording-in-process-broker.js';

const ORDER = new Saga('order')
  .localStep('validate')
  .onExecute((ctx) => {
    ctx.validated = true;
  })
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { qty: ctx.qty as number }))
  .onSuccess(async (ctx, res) => {
    ctx.reservation = (await res.content<{ id: string }>()).id;
  })
  .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservation as string }))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .commit();

function quiet() {
  return collectingLogger();
}

describe('SagaManager.run options', () => {
  it('returns the uuid with returnExecution: false and the errored execution with raiseOnError: false', async () => {
    const { broker } = recordingBroker({
      inventory: { 'inventory.reserve': () => ({ id: 'r' }), 'inventory.release': () => ({}) },
      payment: { 'payment.charge': () => Promise.reject(new Error('card service down')) },
    });
    const manager = new SagaManager({ broker, sagas: [ORDER], logger: quiet() });
    const failed = await manager.run(ORDER, { context: { qty: 1 }, raiseOnError: false });
    expect(failed.status).toBe(SagaStatus.Errored);
    expect(failed.error).toMatchObject({ step: 'charge', code: 'SAGA_PARTICIPANT_SYSTEM_ERROR' });
    expect(failed.step('reserve')).toMatchObject({ status: SagaStepStatus.Finished, compensated: true });

    const uuid = await manager.run(ORDER, { context: { qty: 1 }, returnExecution: false, raiseOnError: false });
    expect(typeof uuid).toBe('string');
    expect((await manager.get(uuid)).status).toBe(SagaStatus.Errored);

    const thrown = await manager.run(ORDER, { context: { qty: 1 } }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(SagaFailedExecutionError);
    expect((thrown as SagaFailedExecutionError).execution.status).toBe(SagaStatus.Errored);
    expect((thrown as SagaFailedExecutionError).message).toContain('charge');
    await manager.close();
  });

  it('with pauseOnDisk resolves once paused and stored, keeps nothing in memory, and resumes on the response', async () => {
    const broker = new ManualBroker();
    const repository = new InMemorySagaRepository();
    const manager = new SagaManager({ broker, repository, sagas: [ORDER], logger: quiet() });
    const paused = await manager.run(ORDER, { context: { qty: 2 }, pauseOnDisk: true });
    expect(paused.status).toBe(SagaStatus.Paused);
    expect(paused.step('reserve')?.status).toBe(SagaStepStatus.PausedByOnExecute);
    expect(manager.liveCount).toBe(0);
    const stored = await repository.load(paused.uuid);
    expect(stored?.status).toBe(SagaStatus.Paused);
    expect(stored?.outbox.map((r) => r.target)).toEqual(['inventory.reserve']);

    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r-9' });
    await until(() => broker.requests.some((r) => r.target === 'payment.charge'), 'the charge is requested');
    expect(manager.liveCount).toBe(0);
    broker.answer(broker.last('payment.charge'));
    const done = await manager.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.reservation).toBe('r-9');
    expect(manager.liveCount).toBe(0);
    await manager.close();
  });

  it('refuses a second run with the same uuid: while the first runs, and once it is stored', async () => {
    const broker = new ManualBroker();
    const repository = new InMemorySagaRepository();
    const manager = new SagaManager({ broker, repository, sagas: [ORDER], logger: quiet() });
    const first = manager.run(ORDER, { uuid: 'fixed-id' });
    const concurrent = manager.run(ORDER, { uuid: 'fixed-id' });
    await expect(concurrent).rejects.toBeInstanceOf(SagaAlreadyRunningError);
    await expect(concurrent).rejects.toMatchObject({ code: 'SAGA_ALREADY_RUNNING', uuid: 'fixed-id' });
    await until(() => broker.requests.length === 1, 'the first run waits on its request');
    // Another manager on the same repository: the uuid is taken by a stored execution.
    const other = new SagaManager({ broker: new ManualBroker(), repository, sagas: [ORDER], logger: quiet() });
    await expect(other.run(ORDER, { uuid: 'fixed-id', pauseOnDisk: true })).rejects.toBeInstanceOf(SagaAlreadyRunningError);
    broker.answer(broker.requests[0]!, 200, { id: 'r-1' });
    await until(() => broker.requests.length === 2, 'the charge is requested');
    broker.answer(broker.requests[1]!, 200, {});
    expect((await first).status).toBe(SagaStatus.Finished);
    await expect(manager.run(ORDER, { uuid: 'fixed-id' })).rejects.toBeInstanceOf(SagaAlreadyRunningError);
    await other.close();
    await manager.close();
  });
});

describe('SagaManager lookups and bad input', () => {
  it('lists executions by status and saga name, newest first, with a cursor', async () => {
    const other = new Saga('other').localStep('a').onExecute(() => undefined).commit();
    const manager = new SagaManager({ broker: new ManualBroker(), sagas: [ORDER, other], logger: quiet() });
    const paused = [];
    for (let i = 0; i < 3; i++) paused.push(await manager.run(ORDER, { pauseOnDisk: true }));
    const finished = await manager.run(other);
    expect((await manager.list({ status: SagaStatus.Paused })).items.map((s) => s.uuid).sort()).toEqual(paused.map((p) => p.uuid).sort());
    expect((await manager.list({ sagaName: 'other' })).items.map((s) => s.uuid)).toEqual([finished.uuid]);
    const page1 = await manager.list({ limit: 2 });
    expect(page1.items).toHaveLength(2);
    const page2 = await manager.list({ limit: 2, cursor: page1.cursor });
    expect(page2.items).toHaveLength(2);
    expect(page2.cursor).toBeNull();
    expect(new Set([...page1.items, ...page2.items].map((s) => s.uuid)).size).toBe(4);
    await manager.close();
  });

  it('refuses a uuid that cannot go into a request id', async () => {
    const manager = new SagaManager({ broker: new ManualBroker(), sagas: [ORDER], logger: quiet() });
    for (const uuid of ['a/b', '', 'x'.repeat(129), 'white space']) {
      await expect(manager.run(ORDER, { uuid })).rejects.toThrow(/uuid .* must be 1 to 128 letters/);
    }
    expect(manager.liveCount).toBe(0);
    await manager.close();
  });

  it('gives coded errors for unknown executions and request ids', async () => {
    const manager = new SagaManager({ broker: new ManualBroker(), sagas: [ORDER], logger: quiet() });
    await expect(manager.get('nope')).rejects.toBeInstanceOf(SagaExecutionNotFoundError);
    await expect(manager.resume(new SagaResponse({ requestId: 'not-a-request-id' }))).rejects.toBeInstanceOf(SagaUnknownRequestError);
    await expect(manager.resume(new SagaResponse({ requestId: 'missing/execute/1/reserve' }))).rejects.toMatchObject({ code: 'SAGA_EXECUTION_NOT_FOUND' });
    await manager.close();
    await expect(manager.run(ORDER)).rejects.toBeInstanceOf(SagaManagerClosedError);
  });

  it('reports a broken snapshot with SAGA_SNAPSHOT_INVALID and keeps running other sagas', async () => {
    const broker = new ManualBroker();
    const repository = new CorruptibleInMemoryRepository();
    const logger = quiet();
    // Nothing kept in memory once paused: each response reads the (broken) record.
    const manager = new SagaManager({ broker, repository, sagas: [ORDER], logger, pausedCacheSize: 0 });
    const a = await manager.run(ORDER, { pauseOnDisk: true });
    const b = await manager.run(ORDER, { pauseOnDisk: true });
    await repository.corrupt(a.uuid, '{"format":1, broken');
    await expect(manager.get(a.uuid)).rejects.toBeInstanceOf(SagaSnapshotError);
    const record = (await repository.load(b.uuid)) as SagaRecord;
    const bad = { ...record, snapshot: { ...(record.snapshot as object), value: { running: { 'no-such-step': 'created' } } } };
    await repository.corrupt(b.uuid, JSON.stringify(bad));
    await expect(manager.get(b.uuid)).rejects.toMatchObject({ code: 'SAGA_SNAPSHOT_INVALID' });
    // A response for the broken execution is logged, not thrown into the broker, and nothing crashes.
    broker.answer(broker.requests.find((r) => r.uuid === b.uuid)!);
    await until(() => logger.lines.some((l) => l.message.includes('could not deliver')), 'the failed delivery is logged');
    const c = await manager.run(ORDER, { pauseOnDisk: true });
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'x' });
    await until(() => broker.requests.some((r) => r.uuid === c.uuid && r.target === 'payment.charge'), 'the good saga goes on');
    await manager.close();
  });
});

describe('SagaManager waits, refusals and decisions', () => {
  it('waitFor() gives up after timeoutMs with SAGA_INVALID_STATE naming the status, and the execution carries on', async () => {
    const broker = new ManualBroker();
    const manager = new SagaManager({ broker, sagas: [ORDER], logger: quiet() });
    const paused = await manager.run(ORDER, { pauseOnDisk: true });
    await expect(manager.waitFor(paused.uuid, { timeoutMs: 30 })).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE', message: expect.stringContaining('still paused after waiting 30 ms') });
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r' });
    await until(() => broker.requests.length === 2, 'charge requested');
    broker.answer(broker.last('payment.charge'));
    expect((await manager.waitFor(paused.uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Finished);
    await manager.close();
  });

  it('an execution of a saga this manager does not know is refused with SAGA_NOT_REGISTERED, not lost', async () => {
    const repository = new InMemorySagaRepository();
    const first = new SagaManager({ broker: new ManualBroker(), repository, sagas: [ORDER], logger: quiet() });
    const paused = await first.run(ORDER, { pauseOnDisk: true });
    await first.close();
    const stranger = new SagaManager({ broker: new ManualBroker(), repository, logger: quiet() });
    await expect(stranger.get(paused.uuid)).rejects.toMatchObject({ code: 'SAGA_NOT_REGISTERED' });
    const report = await stranger.recover();
    expect(report.failed).toEqual([expect.objectContaining({ uuid: paused.uuid, code: 'SAGA_NOT_REGISTERED' })]);
    expect((await repository.load(paused.uuid))?.status).toBe(SagaStatus.Paused);
    await stranger.close();
  });

  it('rollback() of an execution awaiting its decision compensates every step in reverse and ends errored', async () => {
    const { broker, seen } = recordingBroker({
      inventory: { 'inventory.reserve': () => ({ id: 'r-1' }), 'inventory.release': () => ({}) },
      payment: { 'payment.charge': () => ({}) },
    });
    const manager = new SagaManager({ broker, sagas: [ORDER], logger: quiet() });
    const waiting = await manager.run(ORDER, { autocommit: false });
    expect(waiting).toMatchObject({ status: SagaStatus.Paused, awaitingCommit: true });
    const rolledBack = await waiting.rollback();
    expect(rolledBack.status).toBe(SagaStatus.Errored);
    expect(rolledBack.error?.code).toBe('SAGA_REJECTED');
    expect(seen).toEqual(['inventory.reserve', 'payment.charge', 'inventory.release']);
    // A second rollback answers the same; a commit after it is refused.
    const again = await rolledBack.rollback();
    expect(again.toJSON()).toEqual(rolledBack.toJSON());
    await expect(rolledBack.commit()).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    expect(seen).toHaveLength(3);
    await manager.close();
  });
});

describe('the cache of executions paused on disk', () => {
  it('a response soon after the pause needs no read; the repository holds every pause all the same', async () => {
    const broker = new ManualBroker();
    const inner = new InMemorySagaRepository();
    let loads = 0;
    const repository = Object.assign(Object.create(inner) as InMemorySagaRepository, {
      load: (uuid: string) => ((loads += 1), inner.load(uuid)),
      store: (record: SagaRecord, expected: number | null) => inner.store(record, expected),
    });
    const manager = new SagaManager({ broker, repository, sagas: [ORDER], logger: quiet() });
    const paused = await manager.run(ORDER, { pauseOnDisk: true, context: { qty: 1 } });
    expect(manager.liveCount).toBe(0);
    expect((await inner.load(paused.uuid))?.status).toBe(SagaStatus.Paused);
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r-1' });
    await until(() => broker.requests.length === 2, 'charge requested');
    expect((await inner.load(paused.uuid))?.outbox.map((r) => r.target)).toEqual(['payment.charge']);
    broker.answer(broker.last('payment.charge'));
    expect((await manager.waitFor(paused.uuid)).status).toBe(SagaStatus.Finished);
    expect(loads).toBe(0); // neither the responses nor waitFor read the repository
    await manager.close();
  });

  it('a cached copy that another manager moved on is read again, and the response applied to the newer version', async () => {
    const repository = new InMemorySagaRepository();
    const brokerA = new ManualBroker();
    const brokerB = new ManualBroker();
    const a = new SagaManager({ broker: brokerA, repository, sagas: [ORDER], logger: quiet() });
    const b = new SagaManager({ broker: brokerB, repository, sagas: [ORDER], logger: quiet() });
    const paused = await a.run(ORDER, { pauseOnDisk: true, context: { qty: 1 } });
    const reserve = brokerA.last('inventory.reserve');
    // B gets the answer and moves the execution on; A still holds the older copy in its cache.
    await b.resume({ requestId: reserve.requestId, status: 200, content: { id: 'r-b' }, relatedServices: [] });
    await until(() => brokerB.requests.length === 1, 'B asks for the charge');
    const charge = brokerB.last('payment.charge');
    // The answer to the charge reaches A: its copy does not wait for it; A reads the record and applies it.
    await a.resume({ requestId: charge.requestId, status: 200, content: {}, relatedServices: [] });
    const done = await a.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.reservation).toBe('r-b');
    // Stored by B on the reserve's answer, by A on the charge's, then on each of the four votes and acknowledgements.
    expect((await repository.load(paused.uuid))?.version).toBe(7);
    expect(brokerA.transactions.map((r) => `${r.phase} ${r.target}`).sort()).toEqual(['commit inventory', 'commit payment', 'reserve inventory', 'reserve payment']);
    await a.close();
    await b.close();
  });

  it('a stale cached copy whose store conflicts is read again and the event applied once', async () => {
    const repository = new InMemorySagaRepository();
    const brokerA = new ManualBroker();
    const a = new SagaManager({ broker: brokerA, repository, sagas: [ORDER], logger: quiet() });
    const b = new SagaManager({ broker: new ManualBroker(), repository, sagas: [ORDER], logger: quiet() });
    const paused = await a.run(ORDER, { pauseOnDisk: true, autocommit: true, context: { qty: 1 } });
    const reserve = brokerA.last('inventory.reserve');
    // Another writer stores a newer version of the same wait (as a re-delivery elsewhere would): A's copy is stale.
    const stored = (await repository.load(paused.uuid))!;
    await repository.store({ ...stored, version: stored.version + 1, updatedAt: stored.updatedAt + 1 }, stored.version);
    await a.resume({ requestId: reserve.requestId, status: 200, content: { id: 'r-a' }, relatedServices: [] });
    await until(() => brokerA.requests.some((r) => r.target === 'payment.charge'), 'A asks for the charge after reading again');
    const record = (await repository.load(paused.uuid))!;
    expect(record.version).toBe(stored.version + 2);
    expect(record.outbox.map((r) => r.target)).toEqual(['payment.charge']);
    await a.close();
    await b.close();
  });
});

describe('SagaManager across restarts and versions', () => {
  it('recover() re-sends the outbox of executions paused by a manager that stopped', async () => {
    const repository = new InMemorySagaRepository();
    const first = new ManualBroker();
    const a = new SagaManager({ broker: first, repository, sagas: [ORDER], logger: quiet() });
    const paused = await a.run(ORDER, { context: { qty: 3 }, pauseOnDisk: true });
    const sent = first.last('inventory.reserve');
    await a.close();

    const broker = new RecordingInProcessBroker();
    broker.participant('inventory', { 'inventory.reserve': () => ({ id: 'r-1' }) });
    broker.participant('payment', { 'payment.charge': () => ({}) });
    const b = new SagaManager({ broker, repository, sagas: [ORDER], logger: quiet() });
    const report = await b.recover();
    expect(report).toMatchObject({ recovered: 1, resent: 1, failed: [] });
    expect(broker.sent[0]?.requestId).toBe(sent.requestId);
    const done = await b.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    // The steps' requests, then the two-phase commit with both services that took part.
    expect(broker.sent.map((r) => `${r.phase} ${r.target}`)).toEqual([
      'execute inventory.reserve',
      'execute payment.charge',
      'reserve inventory',
      'reserve payment',
      'commit inventory',
      'commit payment',
    ]);
    expect(done.transaction).toMatchObject({ id: paused.uuid, phase: null, reserve: { ok: true }, commit: { ok: true } });
    await b.close();
  });

  it('restores an execution onto the definition version it started with, and names both hashes otherwise', async () => {
    const v1 = new Saga('versioned').remoteStep('a').onExecute(() => new SagaRequest('svc.a', {})).commit();
    const v2 = new Saga('versioned')
      .remoteStep('a')
      .onExecute(() => new SagaRequest('svc.a', {}))
      .localStep('b')
      .onExecute((ctx) => {
        ctx.v2 = true;
      })
      .commit();
    expect(v2.hash).not.toBe(v1.hash);
    const repository = new InMemorySagaRepository();
    const broker = new ManualBroker();
    const old = new SagaManager({ broker, repository, sagas: [v1], logger: quiet() });
    const paused = await old.run(v1, { pauseOnDisk: true });
    await old.close();

    const onlyNew = new SagaManager({ broker, repository, sagas: [v2], logger: quiet() });
    const err = await onlyNew.get(paused.uuid).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SagaDefinitionMismatchError);
    expect((err as Error).message).toContain(v1.hash);
    expect((err as Error).message).toContain(v2.hash);
    await onlyNew.close();

    const both = new SagaManager({ broker, repository, sagas: [v1, v2], logger: quiet() });
    await both.resume({ requestId: broker.last('svc.a').requestId, status: 200, content: {}, relatedServices: [] });
    const done = await both.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.definitionHash).toBe(v1.hash);
    expect(done.context.v2).toBeUndefined();
    const fresh = await both.run(v2, { pauseOnDisk: true });
    expect(fresh.definitionHash).toBe(v2.hash);
    await both.close();
  });
});

describe('inspection', () => {
  it('emits the inspection events @statelyai/inspect uses: one actor per execution, its uuid, across pauses on disk and restores', async () => {
    const events: InspectionEvent[] = [];
    const broker = new ManualBroker();
    const manager = new SagaManager({ broker, sagas: [ORDER], inspect: (e) => events.push(e), logger: quiet() });
    const paused = await manager.run(ORDER, { context: { qty: 1 }, pauseOnDisk: true });
    expect(manager.liveCount).toBe(0);
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r' });
    await until(() => broker.requests.some((r) => r.target === 'payment.charge'), 'charge requested');
    broker.answer(broker.last('payment.charge'));
    const done = await manager.waitFor(paused.uuid);
    expect(done.status).toBe(SagaStatus.Finished);
    type Ref = { id: string; sessionId: string; logic: { id?: string; config?: { id?: string } }; getSnapshot(): { value: unknown } };
    const ref = (e: InspectionEvent) => e.actorRef as unknown as Ref;
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    // Restored twice (once per response), announced once: the inspector sees one actor.
    const actors = events.filter((e) => e.type === '@xstate.actor');
    expect(actors).toHaveLength(1);
    expect(ref(actors[0]!)).toMatchObject({ id: paused.uuid, sessionId: paused.uuid });
    expect(ref(actors[0]!).logic.config?.id).toBe(ORDER.id);
    expect(new Set(events.map((e) => ref(e).sessionId))).toEqual(new Set([paused.uuid]));
    expect(new Set(events.map((e) => (e as { rootId?: string }).rootId))).toEqual(new Set([paused.uuid]));
    const sent = events.filter((e) => e.type === '@xstate.event').map((e) => (e as { event: { type: string } }).event.type);
    // Two steps' responses, then a vote and an acknowledgement from each of the two services.
    expect(sent.filter((t) => t === 'saga.response')).toHaveLength(6);
    expect(sent[0]).toBe('xstate.init');
    expect(sent).toContain('saga.start');
    expect(sent).toContain('xstate.done.actor.validate:onExecute');
    const snapshots = events.filter((e) => e.type === '@xstate.snapshot').map((e) => (e as unknown as { snapshot: { value: unknown; status: string } }).snapshot);
    expect(snapshots.at(-1)).toMatchObject({ value: 'finished', status: 'done' });
    expect(snapshots.map((s) => JSON.stringify(s.value))).toContain(JSON.stringify({ running: { reserve: 'paused-by-on-execute' } }));
    await manager.close();
  });

  it('@statelyai/inspect converts what the runtime emits into its own frames', async () => {
    const frames: Array<{ type: string; sessionId: string; name?: string; definition?: string; snapshot?: { value?: unknown }; event?: { type: string } }> = [];
    const inspector = createInspector({ send: (frame: never) => frames.push(frame), start() {}, stop() {} } as never);
    const broker = new ManualBroker();
    const manager = new SagaManager({ broker, sagas: [ORDER], inspect: inspector.inspect, logger: quiet() });
    const running = manager.run(ORDER, { context: { qty: 2 } });
    await until(() => broker.requests.length === 1, 'reserve requested');
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r' });
    await until(() => broker.requests.length === 2, 'charge requested');
    broker.answer(broker.last('payment.charge'), 400, { declined: true });
    await until(() => broker.requests.length === 3, 'the reservation is released');
    broker.answer(broker.last('inventory.release'));
    const ended = await running.catch((err: { execution: { uuid: string } }) => err.execution);
    await until(() => frames.some((f) => f.type === '@xstate.snapshot' && JSON.stringify(f.snapshot?.value) === '"errored"'), 'the inspector got the last snapshot');
    const actor = frames.find((f) => f.type === '@xstate.actor');
    expect(actor).toMatchObject({ sessionId: ended.uuid, name: ORDER.id });
    expect(actor?.definition).toContain(ORDER.id);
    expect(frames.filter((f) => f.type === '@xstate.event').map((f) => f.event?.type)).toContain('saga.response');
    expect(new Set(frames.map((f) => f.sessionId))).toEqual(new Set([ended.uuid]));
    await manager.close();
  });
});
