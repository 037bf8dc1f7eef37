import { describe, expect, it } from 'vitest';
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
  SagaVersionConflictError,
  type SagaRecord,
} from '../../src/index.js';
import { collectingLogger, ManualBroker, recordingBroker, until } from '../support/harness.js';

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

  it('refuses a second run with the same uuid', async () => {
    const manager = new SagaManager({ broker: new ManualBroker(), sagas: [ORDER], logger: quiet() });
    await manager.run(ORDER, { uuid: 'fixed-id', pauseOnDisk: true });
    await expect(manager.run(ORDER, { uuid: 'fixed-id', pauseOnDisk: true })).rejects.toBeInstanceOf(SagaVersionConflictError);
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
    const repository = new InMemorySagaRepository();
    const logger = quiet();
    const manager = new SagaManager({ broker, repository, sagas: [ORDER], logger });
    const a = await manager.run(ORDER, { pauseOnDisk: true });
    const b = await manager.run(ORDER, { pauseOnDisk: true });
    repository.corrupt(a.uuid, '{"format":1, broken');
    await expect(manager.get(a.uuid)).rejects.toBeInstanceOf(SagaSnapshotError);
    const record = (await repository.load(b.uuid)) as SagaRecord;
    const bad = { ...record, snapshot: { ...(record.snapshot as object), value: { running: { 'no-such-step': 'created' } } } };
    repository.corrupt(b.uuid, JSON.stringify(bad));
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

describe('SagaManager across restarts and versions', () => {
  it('recover() re-sends the outbox of executions paused by a manager that stopped', async () => {
    const repository = new InMemorySagaRepository();
    const first = new ManualBroker();
    const a = new SagaManager({ broker: first, repository, sagas: [ORDER], logger: quiet() });
    const paused = await a.run(ORDER, { context: { qty: 3 }, pauseOnDisk: true });
    const sent = first.last('inventory.reserve');
    await a.close();

    const { broker, seen } = recordingBroker({
      inventory: { 'inventory.reserve': () => ({ id: 'r-1' }) },
      payment: { 'payment.charge': () => ({}) },
    });
    const b = new SagaManager({ broker, repository, sagas: [ORDER], logger: quiet() });
    const report = await b.recover();
    expect(report).toMatchObject({ recovered: 1, resent: 1, failed: [] });
    expect(broker.sent[0]?.requestId).toBe(sent.requestId);
    const done = await b.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(seen).toEqual(['inventory.reserve', 'payment.charge']);
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
  it('hands the inspect observer to every saga actor, restored ones included', async () => {
    const events: InspectionEvent[] = [];
    const broker = new ManualBroker();
    const manager = new SagaManager({ broker, sagas: [ORDER], inspect: (e) => events.push(e), logger: quiet() });
    const paused = await manager.run(ORDER, { context: { qty: 1 }, pauseOnDisk: true });
    broker.answer(broker.last('inventory.reserve'), 200, { id: 'r' });
    await until(() => broker.requests.some((r) => r.target === 'payment.charge'), 'charge requested');
    broker.answer(broker.last('payment.charge'));
    await manager.waitFor(paused.uuid);
    type Ref = { _parent?: unknown; id: string; logic: { id?: string } };
    const ref = (e: InspectionEvent) => e.actorRef as unknown as Ref;
    const types = new Set(events.map((e) => e.type));
    expect(types).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot', '@xstate.microstep', '@xstate.action']));
    const rootIds = new Set(events.filter((e) => e.type === '@xstate.actor' && !ref(e)._parent).map((e) => ref(e).logic.id));
    expect([...rootIds]).toEqual([ORDER.id]);
    const sent = events.filter((e) => e.type === '@xstate.event').map((e) => (e as { event: { type: string } }).event.type);
    expect(sent).toContain('saga.start');
    // Each response goes once, straight to the remote-step child waiting for it.
    const responses = events.filter((e) => e.type === '@xstate.event' && (e as { event: { type: string } }).event.type === 'saga.response');
    expect(responses.map((e) => ref(e).id)).toEqual(['reserve:execute', 'charge:execute']);
    // The restored actor announces itself again: two root actors for one execution (run, then resume).
    expect(events.filter((e) => e.type === '@xstate.actor' && !ref(e)._parent)).toHaveLength(3);
    const children = new Set(events.filter((e) => e.type === '@xstate.actor' && ref(e)._parent).map((e) => ref(e).id));
    expect(children).toContain('reserve:execute');
    expect(children).toContain('validate:onExecute');
    await manager.close();
  });
});
