/**
 * Several orchestrator instances on one Redis (in this process, each with its own WebSocket
 * broker, manager and cluster membership): requests for a service connected to another instance
 * reach it through Redis Streams, responses reach the execution's owner, an operator action sent
 * to an instance that does not own the execution takes effect on the owner, and the executions of
 * an instance that stops renewing its lease are finished by the others within the bound.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdminApi,
  connectParticipant,
  RedisSagaRepository,
  Saga,
  SagaBusinessError,
  SagaCluster,
  SagaManager,
  SagaRequest,
  SagaStatus,
  WebSocketBroker,
  type ParticipantHandlers,
} from '../../src/index.js';
import { clearRedisPrefix } from '../support/clear-redis-prefix.js';
import { collectingLogger, until } from '../support/harness.js';
import { REDIS_URL } from '../support/redis.js';

const LEASE_MS = 600;
const AUTH = { inventory: 'inventory-token', payment: 'payment-token' };

const ORDER = new Saga<{ n: number; decline?: boolean }>('cluster-order')
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { n: ctx.n }))
  .onFailure((ctx) => new SagaRequest('inventory.release', { n: ctx.n }))
  .remoteStep('charge')
  .onExecute((ctx) => new SagaRequest('payment.charge', { n: ctx.n, decline: ctx.decline === true }))
  .onFailure((ctx) => new SagaRequest('payment.refund', { n: ctx.n }))
  .commit();

interface Instance {
  name: string;
  broker: WebSocketBroker;
  cluster: SagaCluster;
  manager: SagaManager;
  repository: RedisSagaRepository;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function startInstance(name: string, prefix: string): Promise<Instance> {
  const logger = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: AUTH, logger });
  const cluster = await SagaCluster.start({ redis: REDIS_URL, instance: name, broker, keyPrefix: prefix, leaseMs: LEASE_MS, logger });
  const repository = new RedisSagaRepository({ redis: REDIS_URL, keyPrefix: prefix, logger });
  const manager = new SagaManager({ repository, sagas: [ORDER], logger, recoverIntervalMs: 0, ...cluster.managerOptions() });
  await cluster.attach(manager);
  const instance = { name, broker, cluster, manager, repository };
  cleanups.push(() => stopInstance(instance));
  return instance;
}

async function stopInstance(i: Instance): Promise<void> {
  await i.cluster.close();
  await i.manager.close();
  await i.broker.close();
  await i.repository.close();
}

/** Every handler call, by `uuid:target`: a step or compensation applied twice shows as 2. */
function ledger() {
  const calls = new Map<string, number>();
  const count = (target: string) => (content: unknown, request: { uuid: string }) => {
    const key = `${request.uuid}:${target}`;
    calls.set(key, (calls.get(key) ?? 0) + 1);
    if (target === 'payment.charge' && (content as { decline?: boolean }).decline) throw new SagaBusinessError('declined', { n: (content as { n: number }).n });
    return { ok: true };
  };
  const handlers = (targets: string[]): ParticipantHandlers => Object.fromEntries(targets.map((t) => [t, count(t)]));
  return { calls, handlers };
}

async function participant(instance: Instance, service: 'inventory' | 'payment', handlers: ParticipantHandlers) {
  const p = await connectParticipant({ url: instance.broker.url, service, token: AUTH[service], handlers, logger: collectingLogger(), reconnect: false });
  cleanups.push(() => p.close());
  return p;
}

async function cluster3() {
  const prefix = `sagachart-test:${randomBytes(6).toString('hex')}:`;
  const a = await startInstance('a', prefix);
  const b = await startInstance('b', prefix);
  const c = await startInstance('c', prefix);
  cleanups.unshift(async () => {
    const redis = new Redis(REDIS_URL);
    await clearRedisPrefix(redis, prefix);
    redis.disconnect();
  });
  for (const i of [a, b, c]) await i.cluster.membership.renew();
  await until(() => [a, b, c].every((i) => i.cluster.membership.members.length === 3), 'all three see each other');
  return { a, b, c, prefix };
}

describe('three orchestrator instances on one Redis', () => {
  it('runs sagas started on any instance with participants connected to others; each is placed where it started; nothing applied twice', async () => {
    const { a, b, c, prefix } = await cluster3();
    const { calls, handlers } = ledger();
    // inventory only on a; payment on b and c.
    await participant(a, 'inventory', handlers(['inventory.reserve', 'inventory.release']));
    await participant(b, 'payment', handlers(['payment.charge', 'payment.refund']));
    await participant(c, 'payment', handlers(['payment.charge', 'payment.refund']));
    await until(() => a.broker.connectedServices().length === 1 && b.broker.connectedServices().length === 1 && c.broker.connectedServices().length === 1, 'participants connected');

    const instances = [a, b, c];
    const runs = Array.from({ length: 60 }, (_, n) => {
      const on = instances[n % 3]!;
      return on.manager.run(ORDER, { context: { n, decline: n % 10 === 0 }, raiseOnError: false }).then((e) => ({ e, on }));
    });
    const done = await Promise.all(runs);
    for (const { e, on } of done) {
      const declined = (e.context.get('n') as number) % 10 === 0;
      expect(e.status, `saga ${String(e.context.get('n'))}`).toBe(declined ? SagaStatus.Errored : SagaStatus.Finished);
      // Placed on the instance that started it.
      expect(on.cluster.membership.owner(e.uuid)).toBe(on.name);
      expect(calls.get(`${e.uuid}:inventory.reserve`)).toBe(1);
      expect(calls.get(`${e.uuid}:payment.charge`)).toBe(1);
      expect(calls.get(`${e.uuid}:inventory.release`) ?? 0).toBe(declined ? 1 : 0);
      expect(calls.get(`${e.uuid}:payment.refund`) ?? 0).toBe(0);
    }
    // b and c have no inventory participant: their reserves went through Redis to a, and a's charges to b or c.
    expect(b.cluster.stats.forwardedRequests + c.cluster.stats.forwardedRequests).toBeGreaterThanOrEqual(40);
    expect(a.cluster.stats.deliveredRequests).toBeGreaterThanOrEqual(40);
    expect(a.cluster.stats.forwardedResponses).toBeGreaterThanOrEqual(40);
    // Every routing message was handled and deleted: the streams hold nothing.
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${prefix}{route}:*`);
      const streams = keys.filter((k) => !k.endsWith(':instances'));
      expect(streams.length).toBeGreaterThanOrEqual(3);
      for (const key of streams) expect(await redis.xlen(key), key).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('an operator action sent to an instance that does not own the execution takes effect on the owner', async () => {
    const { a, b } = await cluster3();
    const { handlers } = ledger();
    const parked: Array<() => void> = [];
    await participant(a, 'inventory', handlers(['inventory.reserve', 'inventory.release']));
    // payment hangs: the execution waits on its charge.
    await participant(b, 'payment', {
      'payment.charge': () => new Promise((resolve) => parked.push(() => resolve({ late: true }))),
      'payment.refund': () => ({ refunded: true }),
    });
    await until(() => a.broker.connectedServices().length === 1 && b.broker.connectedServices().length === 1, 'participants connected');
    const running = a.manager.run(ORDER, { context: { n: 1 }, raiseOnError: false });
    await until(() => parked.length === 1, 'charge reached the participant on b');
    const [item] = (await b.manager.list({ status: SagaStatus.Paused })).items;
    expect(item).toBeDefined();
    const uuid = item!.uuid;
    expect(a.cluster.owns(uuid)).toBe(true);
    expect(b.cluster.actionRouter.owns(uuid)).toBe(false);

    // Through b's admin API, as an operator would.
    const admin = AdminApi.attach(b.broker.server, { manager: b.manager, broker: b.broker, router: b.cluster.actionRouter, token: 'cluster-admin-token', logger: collectingLogger() });
    cleanups.push(() => admin.close());
    const headers = { authorization: 'Bearer cluster-admin-token', 'content-type': 'application/json' };
    const overview = (await (await fetch(`http://127.0.0.1:${b.broker.port}/admin/api/overview`, { headers })).json()) as { cluster: { instance: string; members: string[] } };
    expect(overview.cluster).toMatchObject({ instance: 'b', members: ['a', 'b', 'c'] });
    const res = await fetch(`http://127.0.0.1:${b.broker.port}/admin/api/executions/${uuid}/abort`, { method: 'POST', headers, body: JSON.stringify({ note: 'sent to b' }) });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { execution: { status: string; history: unknown[] } };
    expect(result.execution.status).toBe(SagaStatus.Errored);
    expect(result.execution.history).toEqual([{ action: 'abort', at: expect.any(Number), note: 'sent to b' }]);
    expect(b.cluster.stats.forwardedActions).toBe(1);
    expect(a.cluster.stats.servedActions).toBe(1);
    expect((await running).status).toBe(SagaStatus.Errored);
    // A refusal comes back with its code.
    await expect(b.cluster.actionRouter.act(uuid, 'retry-compensation', {})).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    parked.forEach((release) => release());
  });

  it('the executions of an instance that stops renewing its lease are finished by the others within two leases', async () => {
    const { a, b, c } = await cluster3();
    const { calls, handlers } = ledger();
    await participant(a, 'inventory', handlers(['inventory.reserve', 'inventory.release']));
    // payment answers only once released, after c is gone: its answers first go to c, which owns the executions.
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const charge = handlers(['payment.charge'])['payment.charge']!;
    const payment = async (content: unknown, request: { uuid: string }) => {
      await opened;
      return charge(content as never, request as never);
    };
    await participant(b, 'payment', { 'payment.charge': payment, 'payment.refund': () => ({}) });
    await until(() => a.broker.connectedServices().length === 1 && b.broker.connectedServices().length === 1, 'participants connected');

    const runs = Array.from({ length: 12 }, (_, n) => c.manager.run(ORDER, { context: { n }, raiseOnError: false, returnExecution: false }));
    runs.forEach((r) => r.catch(() => undefined));
    await until(async () => (await a.manager.list({ status: SagaStatus.Paused })).items.filter((i) => calls.has(`${i.uuid}:inventory.reserve`)).length === 12, 'all 12 wait on their charge');
    const uuids = (await a.manager.list({ status: SagaStatus.Paused })).items.map((i) => i.uuid);
    expect(uuids.every((u) => c.cluster.owns(u))).toBe(true);

    // c dies: it stops renewing and reading, without giving its lease up.
    const died = Date.now();
    await c.cluster.close({ release: false });
    await c.manager.close();
    await c.broker.close();
    open();
    await until(() => a.cluster.membership.members.length === 2 && b.cluster.membership.members.length === 2, 'a and b see c gone', 4 * LEASE_MS);
    await until(async () => (await Promise.all(uuids.map((u) => a.manager.get(u)))).every((e) => e.status === SagaStatus.Finished), 'c\'s executions finished by a and b', 10_000);
    const took = Date.now() - died;
    expect(took).toBeLessThan(2 * LEASE_MS + 2_000);
    expect(a.cluster.stats.takenOver + b.cluster.stats.takenOver).toBe(12);
    for (const u of uuids) {
      expect(calls.get(`${u}:inventory.reserve`)).toBe(1);
      expect(calls.get(`${u}:payment.charge`)).toBe(1);
    }
  });
});
