/**
 * The admin API over real HTTP: auth, listing and paging, one execution with its chart, every
 * operator action and every refusal, bad and hostile input, the event stream and the metrics,
 * and the API sharing the broker's port with participants.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  AdminApi,
  asyncApiDocument,
  connectParticipant,
  InMemorySagaRepository,
  InspectionStream,
  Saga,
  SagaManager,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  WebSocketBroker,
  type ChartNode,
  type SagaChart,
} from '../../src/index.js';
import { closeManagers, collectingLogger, ManualBroker, managerWith, until } from '../support/harness.js';

const TOKEN = 'operators-secret-1';
const apis: AdminApi[] = [];
afterEach(async () => {
  await Promise.all(apis.splice(0).map((a) => a.close()));
  await closeManagers();
});

/** validate (local) → reserve (inventory) → hold (local, compensation broken while `broken.hold`) → charge (payment). */
function orderSaga(broken: { hold: boolean }) {
  return new Saga('admin-order')
    .localStep('validate')
    .onExecute((ctx) => {
      ctx.validated = true;
    })
    .remoteStep('reserve')
    .onExecute(() => new SagaRequest('inventory.reserve', {}))
    .onFailure(() => new SagaRequest('inventory.release', {}))
    .conditionalStep('route')
    .ifThen(
      (ctx) => ctx.express === true,
      new Saga('express').localStep('rush').onExecute(() => undefined).commit(),
    )
    .elseThen(new Saga('standard').localStep('queue').onExecute(() => undefined).commit())
    .localStep('hold')
    .onExecute(() => undefined)
    .onFailure(() => {
      if (broken.hold) throw new Error('ledger offline');
    })
    .remoteStep('charge')
    .onExecute(() => new SagaRequest('payment.charge', {}))
    .onFailure(() => new SagaRequest('payment.refund', {}))
    .commit();
}

async function setup(options: { transactions?: 'yes' | 'manual'; metrics?: 'token' | 'public' | 'off'; maxBodyBytes?: number } = {}) {
  const broker = new ManualBroker({ transactions: options.transactions ?? 'yes' });
  const broken = { hold: false };
  const saga = orderSaga(broken);
  const inspection = new InspectionStream();
  const manager = managerWith({ broker, repository: new InMemorySagaRepository(), sagas: [saga], inspect: inspection.inspect, logger: collectingLogger() });
  const api = await AdminApi.listen({ manager, token: TOKEN, inspection, logger: collectingLogger(), ...(options.metrics ? { metrics: options.metrics } : {}), ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}) });
  apis.push(api);
  const base = `http://127.0.0.1:${api.port}`;
  const call = async (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    if (typeof init.body === 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const res = await fetch(base + path, { ...init, headers });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const act = (uuid: string, action: string, body: object = {}, query = '') => call(`/admin/api/executions/${uuid}/${action}${query}`, { method: 'POST', body: JSON.stringify(body) });
  /** Starts an execution and waits until it waits on `charge`. */
  const waitingOnCharge = async (context: object = {}) => {
    const before = broker.requests.length;
    const running = manager.run(saga, { context, raiseOnError: false });
    // Tests that leave it waiting close the manager under it.
    running.catch(() => undefined);
    await until(() => broker.requests.length === before + 1, 'reserve sent');
    broker.answer(broker.requests[before]!, 200);
    await until(() => broker.requests.length === before + 2, 'charge sent');
    return { uuid: broker.requests[before]!.uuid, running };
  };
  return { broker, broken, saga, manager, api, base, call, act, waitingOnCharge };
}

const ids = (node: ChartNode): string[] => [node.id, ...node.children.flatMap(ids)];

describe('authentication', () => {
  it('refuses a missing, malformed or wrong token with 401 and a code, and accepts the right one', async () => {
    const { call } = await setup();
    for (const token of [null, 'wrong-token-123', '']) {
      const r = await call('/admin/api/overview', { token });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('SAGA_ADMIN_UNAUTHORIZED');
      expect(r.headers.get('www-authenticate')).toContain('Bearer');
    }
    const basic = await call('/admin/api/overview', { token: null, headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    const ok = await call('/admin/api/overview');
    expect(ok.status).toBe(200);
    expect(ok.json.counts).toEqual({ created: 0, running: 0, paused: 0, finished: 0, errored: 0 });
    expect(ok.json.sagas).toEqual([expect.objectContaining({ name: 'admin-order', steps: 5 })]);
    // Metrics need the token too by default.
    expect((await call('/metrics', { token: null })).status).toBe(401);
    expect((await call('/metrics')).status).toBe(200);
  });

  it('is never built without a real token; metrics can be public or off', async () => {
    const manager = managerWith({ broker: new ManualBroker(), logger: collectingLogger() });
    expect(() => new AdminApi({ manager, token: '' })).toThrow(/token of at least 8 characters/);
    expect(() => new AdminApi({ manager, token: [] })).toThrow(TypeError);
    const pub = await setup({ metrics: 'public' });
    expect((await pub.call('/metrics', { token: null })).status).toBe(200);
    expect((await pub.call('/admin/api/overview', { token: null })).status).toBe(401);
    const off = await setup({ metrics: 'off' });
    expect((await off.call('/metrics')).status).toBe(404);
  });
});

describe('reading executions', () => {
  it('lists with filters and exact paging, newest first', async () => {
    const { call, manager, saga, waitingOnCharge } = await setup();
    const waiting = await waitingOnCharge();
    const done: string[] = [];
    for (let i = 0; i < 5; i++) {
      // A failing validate ends each of these errored at once.
      const e = await manager.run(new Saga('admin-quick').localStep('only').onExecute(() => undefined).commit());
      done.push(e.uuid);
    }
    const all = await call('/admin/api/executions');
    expect(all.status).toBe(200);
    expect(all.json.items).toHaveLength(6);
    const paused = await call('/admin/api/executions?status=paused');
    expect(paused.json.items.map((i: { uuid: string }) => i.uuid)).toEqual([waiting.uuid]);
    const bySaga = await call(`/admin/api/executions?saga=${saga.name}&status=paused,running`);
    expect(bySaga.json.items).toHaveLength(1);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: { items: Array<{ uuid: string }>; cursor: string | null } } = await call(`/admin/api/executions?saga=admin-quick&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.items.map((i) => i.uuid));
      cursor = page.json.cursor;
    } while (cursor);
    // Every execution once, none twice, across the pages (newest first; ties within a millisecond in any order).
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...done].sort());
    const future = await call(`/admin/api/executions?createdAfter=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.json.items).toEqual([]);
  });

  it('refuses bad queries with 400 SAGA_ADMIN_BAD_REQUEST naming the field', async () => {
    const { call } = await setup();
    for (const [query, field] of [
      ['status=bogus', 'query.status'],
      ['limit=0', 'query.limit'],
      ['limit=abc', 'query.limit'],
      ['limit=100000', 'query.limit'],
      ['createdAfter=yesterday', 'query.createdAfter'],
      ['sneaky=1', 'query'],
      [`saga=${'x'.repeat(300)}`, 'query.saga'],
    ] as const) {
      const r = await call(`/admin/api/executions?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.json.error.code).toBe('SAGA_ADMIN_BAD_REQUEST');
      expect(r.json.error.message.startsWith(field), `${query}: ${r.json.error.message}`).toBe(true);
    }
  });

  it('describes one execution: steps, outbox, deadline, the lit states, and its chart uncut with Mermaid', async () => {
    const { call, waitingOnCharge } = await setup();
    const { uuid } = await waitingOnCharge({ express: true });
    const r = await call(`/admin/api/executions/${uuid}`);
    expect(r.status).toBe(200);
    expect(r.json.execution).toMatchObject({ uuid, sagaName: 'admin-order', status: SagaStatus.Paused, pausedStep: 'charge' });
    expect(r.json.execution.steps.map((s: { path: string; status: string }) => [s.path, s.status])).toEqual([
      ['validate', SagaStepStatus.Finished],
      ['reserve', SagaStepStatus.Finished],
      ['route', SagaStepStatus.Finished],
      ['route/express/rush', SagaStepStatus.Finished],
      ['hold', SagaStepStatus.Finished],
      ['charge', SagaStepStatus.PausedByOnExecute],
    ]);
    expect(r.json.outbox).toEqual([expect.objectContaining({ uuid, target: 'payment.charge', step: 'charge', phase: 'execute' })]);
    expect(r.json.timer).toBeNull();
    expect(r.json.version).toBeGreaterThan(0);
    const chart = await call(r.json.chart);
    expect(chart.status).toBe(200);
    const body = chart.json as SagaChart;
    const all = ids(body.root);
    // Every lit state is a state of the chart, down to the step's own sub-state.
    expect(r.json.active.length).toBeGreaterThan(2);
    for (const id of r.json.active) expect(all).toContain(id);
    expect(r.json.active.some((id: string) => id.includes('charge'))).toBe(true);
    // The nested steps of the conditional step are in the chart, not cut.
    expect(all.some((id) => id.includes('rush'))).toBe(true);
    expect(all.some((id) => id.includes('queue'))).toBe(true);
    expect(JSON.stringify(body)).not.toContain('[Object]');
    expect(body.mermaid.startsWith('stateDiagram-v2')).toBe(true);
  });

  it('answers 404 with a code for an unknown execution, saga, route or action, and 405 for a wrong method', async () => {
    const { call, act } = await setup();
    const missing = await call('/admin/api/executions/does-not-exist');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('SAGA_EXECUTION_NOT_FOUND');
    expect((await act('does-not-exist', 'abort')).json.error.code).toBe('SAGA_EXECUTION_NOT_FOUND');
    expect((await call('/admin/api/sagas/nope/abc/chart')).json.error.code).toBe('SAGA_NOT_REGISTERED');
    expect((await call('/admin/api/nothing')).status).toBe(404);
    const action = await act('x', 'explode');
    expect(action.status).toBe(404);
    expect(action.json.error.message).toContain('retry-compensation');
    const wrong = await call('/admin/api/executions', { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.json.error.code).toBe('SAGA_ADMIN_METHOD_NOT_ALLOWED');
    expect((await call(`/admin/api/executions/${'%E0%A4%A'}`)).status).toBe(400);
    expect((await call(`/admin/api/executions/${'u'.repeat(500)}`)).status).toBe(400);
  });
});

describe('starting executions', () => {
  it('starts the last registered version of a saga and answers once it waits; refuses unknown sagas, taken ids and bad contexts', async () => {
    const { call, broker } = await setup();
    const post = (body: object) => call('/admin/api/executions', { method: 'POST', body: JSON.stringify(body) });
    const r = await post({ saga: 'admin-order', context: { express: true }, user: 'ops@example.com', uuid: 'started-1' });
    expect(r.status).toBe(201);
    expect(r.json.execution).toMatchObject({ uuid: 'started-1', sagaName: 'admin-order', status: SagaStatus.Paused, user: 'ops@example.com', pausedStep: 'reserve' });
    expect(broker.last('inventory.reserve').uuid).toBe('started-1');
    const unknown = await post({ saga: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toContain('admin-order');
    const taken = await post({ saga: 'admin-order', uuid: 'started-1' });
    expect(taken.status).toBe(409);
    expect(taken.json.error.code).toBe('SAGA_ALREADY_RUNNING');
    for (const body of [{ saga: 'admin-order', context: [1] }, { saga: 'admin-order', context: 'x' }, { saga: 5 }, {}, { saga: 'admin-order', extra: 1 }]) {
      expect((await post(body)).status, JSON.stringify(body)).toBe(400);
    }
  });
});

describe('executions this orchestrator cannot read', () => {
  it('shows what the repository holds, with the reason, for an unknown saga or a broken snapshot; actions on them answer a code', async () => {
    const { call, act, manager } = await setup();
    const other = new Saga('admin-elsewhere').localStep('x').onExecute(() => undefined).commit();
    const elsewhere = managerWith({ broker: new ManualBroker(), repository: manager.repository, logger: collectingLogger() });
    const foreign = await elsewhere.run(other);
    const r = await call(`/admin/api/executions/${foreign.uuid}`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ execution: null, record: { uuid: foreign.uuid, sagaName: 'admin-elsewhere', status: SagaStatus.Finished }, problem: { code: 'SAGA_NOT_REGISTERED' } });
    expect(r.json.record.snapshot).toBeUndefined();

    const record = (await manager.repository.load(foreign.uuid))!;
    await manager.repository.store({ ...record, uuid: 'broken-1', sagaName: 'admin-order', definitionHash: (await manager.definitions())[0]!.hash, status: SagaStatus.Paused, version: 1, snapshot: { value: 42, context: 'garbage' } }, null);
    const broken = await call('/admin/api/executions/broken-1');
    expect(broken.status).toBe(200);
    expect(broken.json.problem.code).toBe('SAGA_SNAPSHOT_INVALID');
    const abort = await act('broken-1', 'abort');
    expect(abort.json.error.code).toBe('SAGA_SNAPSHOT_INVALID');
    expect(abort.status).toBe(422);
    expect((await call('/admin/api/overview')).status).toBe(200);
  });
});

describe('operator actions', () => {
  it('abort rolls back a waiting execution; the action and note are in its history; a second abort answers the same; an ended execution is refused with 409', async () => {
    const { act, broker, manager, waitingOnCharge } = await setup();
    const { uuid } = await waitingOnCharge();
    const answering = (async () => {
      await until(() => broker.requests.some((r) => r.target === 'payment.refund'), 'refund sent');
      broker.answer(broker.last('payment.refund'));
      await until(() => broker.requests.some((r) => r.target === 'inventory.release'), 'release sent');
      broker.answer(broker.last('inventory.release'));
    })();
    const r = await act(uuid, 'abort', { note: 'customer called' });
    await answering;
    expect(r.status).toBe(200);
    expect(r.json.execution.status).toBe(SagaStatus.Errored);
    expect(r.json.execution.error.code).toBe('SAGA_ABORTED');
    expect(r.json.execution.history).toEqual([{ action: 'abort', at: expect.any(Number), note: 'customer called' }]);
    const again = await act(uuid, 'abort');
    expect(again.status).toBe(200);
    expect(again.json.execution).toMatchObject({ status: SagaStatus.Errored, error: { code: 'SAGA_ABORTED' } });
    const finished = await manager.run(new Saga('admin-quick').localStep('only').onExecute(() => undefined).commit());
    const refused = await act(finished.uuid, 'abort');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('SAGA_INVALID_STATE');
    expect(refused.json.error.message).toContain('cannot abort');
  });

  it('an action that does not settle in time answers 202 with the execution as it is, and carries on', async () => {
    const { act, broker, call, waitingOnCharge } = await setup();
    const { uuid } = await waitingOnCharge();
    const r = await act(uuid, 'abort', {}, '?wait=50');
    expect(r.status).toBe(202);
    expect(r.json.pending).toBe(true);
    broker.answer(broker.last('payment.refund'));
    await until(() => broker.requests.some((q) => q.target === 'inventory.release'), 'release sent');
    broker.answer(broker.last('inventory.release'));
    await until(async () => (await call(`/admin/api/executions/${uuid}`)).json.execution.status === SagaStatus.Errored, 'aborted');
  });

  it('retry-step sends the waiting request again as a new attempt (the paused step by default)', async () => {
    const { act, broker, waitingOnCharge } = await setup();
    const { uuid, running } = await waitingOnCharge();
    const sent = broker.requests.length;
    const r = await act(uuid, 'retry-step', { note: 'payment is back' });
    expect(r.status).toBe(200);
    expect(broker.requests).toHaveLength(sent + 1);
    expect(broker.last('payment.charge').attempt).toBe(2);
    expect(r.json.execution.history.at(-1)).toMatchObject({ action: 'retry-step', step: 'charge', note: 'payment is back' });
    broker.answer(broker.last('payment.charge'));
    expect((await running).status).toBe(SagaStatus.Finished);
    // Nothing waits any more.
    const none = await act(uuid, 'retry-step');
    expect(none.status).toBe(409);
    expect(none.json.error.code).toBe('SAGA_INVALID_STATE');
    const named = await act(uuid, 'retry-step', { step: 'charge' });
    expect(named.status).toBe(409);
  });

  it('retry-compensation runs a failed compensation again; resolve-compensation marks one done by hand with a note', async () => {
    const { act, broker, broken, waitingOnCharge } = await setup();
    broken.hold = true;
    const failing = async () => {
      const { uuid, running } = await waitingOnCharge();
      broker.answer(broker.last('payment.charge'), 400, { message: 'card declined' });
      await until(() => broker.requests.filter((r) => r.uuid === uuid).some((r) => r.target === 'inventory.release'), 'release sent');
      broker.answer(broker.requests.filter((r) => r.uuid === uuid && r.target === 'inventory.release').at(-1)!);
      const ended = await running;
      expect(ended.status).toBe(SagaStatus.Errored);
      expect(ended.steps.find((s) => s.path === 'hold')?.status).toBe(SagaStepStatus.ErroredOnFailure);
      return uuid;
    };
    const first = await failing();
    const stillBroken = await act(first, 'retry-compensation');
    expect(stillBroken.status).toBe(200);
    expect(stillBroken.json.execution.steps.find((s: { path: string }) => s.path === 'hold').compensation.error.message).toBe('ledger offline');
    broken.hold = false;
    const fixed = await act(first, 'retry-compensation', { step: 'hold', note: 'ledger back' });
    expect(fixed.status).toBe(200);
    const hold = fixed.json.execution.steps.find((s: { path: string }) => s.path === 'hold');
    expect(hold).toMatchObject({ status: SagaStepStatus.Finished, compensated: true });
    expect((await act(first, 'retry-compensation', { step: 'hold' })).status).toBe(409);

    broken.hold = true;
    const second = await failing();
    const resolved = await act(second, 'resolve-compensation', { note: 'refunded by hand' });
    expect(resolved.status).toBe(200);
    expect(resolved.json.execution.steps.find((s: { path: string }) => s.path === 'hold').compensation.resolved).toBe(true);
    expect(resolved.json.execution.history.at(-1)).toMatchObject({ action: 'resolve-compensation', step: 'hold', note: 'refunded by hand' });
    const again = await act(second, 'resolve-compensation', { step: 'hold' });
    expect(again.status).toBe(409);
    expect((await act(second, 'retry-compensation', { step: 'validate' })).status).toBe(409);
  });

  it('commit and reject decide executions awaiting a decision, and are refused elsewhere', async () => {
    const { act, broker, manager, saga } = await setup();
    const decide = async () => {
      const before = broker.requests.length;
      const running = manager.run(saga, { autocommit: false, raiseOnError: false });
      await until(() => broker.requests.length === before + 1, 'reserve sent');
      broker.answer(broker.requests[before]!);
      await until(() => broker.requests.length === before + 2, 'charge sent');
      broker.answer(broker.requests[before + 1]!);
      const waiting = await running;
      expect(waiting.awaitingCommit).toBe(true);
      return waiting.uuid;
    };
    const a = await decide();
    const committed = await act(a, 'commit', { note: 'approved' });
    expect(committed.status).toBe(200);
    expect(committed.json.execution.status).toBe(SagaStatus.Finished);
    expect((await act(a, 'reject')).status).toBe(409);

    const b = await decide();
    const rejecting = act(b, 'reject', { note: 'fraud check' });
    await until(() => broker.requests.some((r) => r.uuid === b && r.target === 'payment.refund'), 'refund sent');
    broker.answer(broker.requests.find((r) => r.uuid === b && r.target === 'payment.refund')!);
    await until(() => broker.requests.some((r) => r.uuid === b && r.target === 'inventory.release'), 'release sent');
    broker.answer(broker.requests.find((r) => r.uuid === b && r.target === 'inventory.release')!);
    const rejected = await rejecting;
    expect(rejected.status).toBe(200);
    expect(rejected.json.execution.status).toBe(SagaStatus.Errored);
    expect(rejected.json.execution.error.code).toBe('SAGA_REJECTED');
    expect((await act(b, 'commit')).status).toBe(409);
  });

  it('resolve-transaction ends a reject a service never acknowledges; it needs the service', async () => {
    const { act, broker, call, manager } = await setup({ transactions: 'manual' });
    const saga = new Saga('admin-ghost', { commitTimeoutMs: 60_000 })
      .remoteStep('a')
      .onExecute(() => new SagaRequest('svc.a', {}))
      .localStep('b')
      .onExecute(() => new Error('b fails'))
      .commit();
    const running = manager.run(saga, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'a sent');
    broker.deliver({ requestId: broker.requests[0]!.requestId, status: 200, content: {}, relatedServices: ['ghost'] });
    await until(() => broker.transactions.length === 2, 'reject sent to svc and ghost');
    broker.answer(broker.transactions.find((t) => t.target === 'svc')!, 200);
    const uuid = broker.requests[0]!.uuid;
    await until(async () => (await call(`/admin/api/executions/${uuid}`)).json.outbox.length === 1, 'svc acknowledged');
    const noService = await act(uuid, 'resolve-transaction');
    expect(noService.status).toBe(400);
    expect(noService.json.error.message).toContain('service');
    expect((await act(uuid, 'resolve-transaction', { service: 'nobody' })).status).toBe(409);
    const r = await act(uuid, 'resolve-transaction', { service: 'ghost', note: 'decommissioned' });
    expect(r.status).toBe(200);
    expect((await running).status).toBe(SagaStatus.Errored);
    expect((await manager.get(uuid)).transaction.reject?.parts).toEqual([
      { service: 'svc', outcome: 'ack', attempts: 1 },
      { service: 'ghost', outcome: 'resolved', attempts: 1 },
    ]);
  });

  it('refuses bad bodies: wrong types, unknown fields, not JSON, not declared JSON, too large', async () => {
    const { call, waitingOnCharge } = await setup({ maxBodyBytes: 4096 });
    const { uuid } = await waitingOnCharge();
    const post = (body: string, headers: Record<string, string> = {}) => call(`/admin/api/executions/${uuid}/retry-step`, { method: 'POST', body, headers });
    for (const body of ['{"step": 5}', '{"note": ["x"]}', '{"stepp": "charge"}', '[1,2]', '"abort"', 'null', `{"note": "${'n'.repeat(2001)}"}`]) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      expect(r.json.error.code).toBe('SAGA_ADMIN_BAD_REQUEST');
    }
    expect((await post('{not json')).status).toBe(400);
    const plain = await post('{"step":"charge"}', { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    const huge = await post(JSON.stringify({ note: 'x'.repeat(1_000_000) }));
    expect(huge.status).toBe(413);
    expect(huge.json.error.code).toBe('SAGA_ADMIN_BODY_TOO_LARGE');
    // The execution is untouched, and the server still answers.
    const after = await call(`/admin/api/executions/${uuid}`);
    expect(after.json.execution).toMatchObject({ status: SagaStatus.Paused, history: [] });
  });

  it('survives a barrage of hostile requests and keeps answering', async () => {
    const { base, call } = await setup();
    const paths = ['/admin/api/executions/%00', '/admin/api/executions/../../etc/passwd', '/admin/api/sagas/%2F%2F/x/chart', '/admin/api/events?types=' + 'x'.repeat(500), '/admin/%2e%2e/package.json', '/admin/api/executions?status=' + ',' .repeat(300)];
    const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
    const results = await Promise.all(
      paths.flatMap((p) =>
        methods.map(async (method) => {
          const res = await fetch(base + p, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, ...(method === 'GET' || method === 'OPTIONS' ? {} : { body: '{"a":' }) });
          await res.text();
          return res.status;
        }),
      ),
    );
    expect(results.filter((s) => s < 400 || s >= 500)).toEqual([]);
    expect((await call('/admin/api/overview')).status).toBe(200);
  });
});

describe('the protocol document', () => {
  it('serves the AsyncAPI document of the participant protocol, behind the token', async () => {
    const { call } = await setup();
    expect((await call('/admin/api/protocol', { token: null })).status).toBe(401);
    const r = await call('/admin/api/protocol');
    expect(r.status).toBe(200);
    expect(r.json).toEqual(asyncApiDocument());
    expect(r.json.asyncapi).toMatch(/^3\./);
  });
});

describe('live events and metrics', () => {
  it('streams store and inspection events as server-sent events to a reader with the token', async () => {
    const { base, manager, saga, broker } = await setup();
    const refused = await fetch(`${base}/admin/api/events`);
    expect(refused.status).toBe(401);
    const abort = new AbortController();
    const res = await fetch(`${base}/admin/api/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: abort.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += decoder.decode(value);
      }
    })();
    const running = manager.run(saga, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'reserve sent');
    const uuid = broker.requests[0]!.uuid;
    await until(() => text.includes('event: store') && text.includes('event: inspect'), 'events arrive');
    const stores = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: store'))
      .map((block) => JSON.parse(block.split('\ndata: ')[1]!) as { uuid: string; status: string });
    expect(stores[0]).toMatchObject({ uuid, sagaName: 'admin-order', status: SagaStatus.Paused, outcome: 'stored' });
    const inspects = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: inspect'))
      .map((block) => JSON.parse(block.split('\ndata: ')[1]!) as { actor: string; type: string });
    expect(inspects.every((i) => i.actor === uuid)).toBe(true);
    expect(inspects.some((i) => i.type === '@xstate.snapshot')).toBe(true);
    abort.abort();
    await reading;
    broker.answer(broker.last('inventory.reserve'), 400);
    expect((await running).status).toBe(SagaStatus.Errored);
  });

  it('serves Prometheus text: executions by status, steps by outcome per saga, store latency', async () => {
    const { call, manager, saga, broker } = await setup();
    const running = manager.run(saga, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'reserve sent');
    broker.answer(broker.requests[0]!, 200);
    await until(() => broker.requests.length === 2, 'charge sent');
    broker.answer(broker.requests[1]!, 400, { message: 'declined' });
    await until(() => broker.requests.length === 3, 'release sent');
    broker.answer(broker.requests[2]!);
    const ended = await running;
    expect(ended.status).toBe(SagaStatus.Errored);
    const compensated = ended.steps.filter((s) => s.compensated).length;
    expect(compensated).toBeGreaterThanOrEqual(2);
    const r = await call('/metrics');
    expect(r.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const lines = r.text.split('\n');
    expect(lines).toContain('sagachart_executions{status="errored"} 1');
    expect(lines).toContain('sagachart_executions_ended_total{saga="admin-order",status="errored"} 1');
    // validate, reserve, route + queue, hold and charge started; charge failed; the steps before it rolled back.
    expect(lines).toContain('sagachart_steps_total{saga="admin-order",outcome="started"} 6');
    expect(lines).toContain('sagachart_steps_total{saga="admin-order",outcome="failed"} 1');
    expect(lines).toContain(`sagachart_steps_total{saga="admin-order",outcome="compensated"} ${compensated}`);
    expect(r.text).toMatch(/^sagachart_store_seconds_count \d+$/m);
    expect(r.text).toMatch(/^sagachart_stores_total\{outcome="stored"\} \d+$/m);
    for (const line of lines.filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$/);
  });
});

describe('on the broker port, beside participants', () => {
  it('answers admin routes and metrics there while participants connect by WebSocket and plain HTTP gets 426', async () => {
    const broker = await WebSocketBroker.listen({ auth: { inventory: 'inv-token', payment: 'pay-token' }, logger: collectingLogger() });
    const saga = new Saga('admin-ws')
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('inventory.reserve', {}))
      .commit();
    const manager = managerWith({ broker, sagas: [saga], logger: collectingLogger() });
    const api = AdminApi.attach(broker.server, { manager, broker, token: TOKEN, logger: collectingLogger() });
    apis.push(api);
    const participant = await connectParticipant({ url: broker.url, service: 'inventory', token: 'inv-token', handlers: { 'inventory.reserve': () => ({ ok: true }) }, logger: collectingLogger() });
    try {
      const done = await manager.run(saga);
      expect(done.status).toBe(SagaStatus.Finished);
      const base = `http://127.0.0.1:${broker.port}`;
      const overview = (await (await fetch(`${base}/admin/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { broker: unknown };
      expect(overview.broker).toMatchObject({ connections: 1, services: ['inventory'] });
      const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      expect(metrics).toMatch(/^sagachart_responses_total\{service="inventory",phase="execute",status="200"\} 1$/m);
      expect(metrics).toMatch(/^sagachart_response_seconds_count\{service="inventory",phase="execute"\} 1$/m);
      expect(metrics).toMatch(/^sagachart_participant_connections 1$/m);
      const plain = await fetch(`${base}/`);
      expect(plain.status).toBe(426);
      // A wrong token at the WebSocket upgrade is still the broker's 401.
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(broker.url, { headers: { authorization: 'Bearer nope', 'x-sagachart-service': 'inventory' } });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => undefined);
      });
      expect(refused).toBe(401);
    } finally {
      await participant.close();
      await api.close();
      await manager.close();
      await broker.close();
    }
  });
});

void SagaManager;
