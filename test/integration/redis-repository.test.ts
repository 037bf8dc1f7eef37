import { afterEach, describe, expect, it } from 'vitest';
import {
  InProcessBroker,
  ManualClock,
  RECORD_FORMAT,
  Saga,
  SagaManager,
  SagaRequest,
  SagaStatus,
  SagaVersionConflictError,
  type SagaRecord,
  type SagaStatus as Status,
} from '../../src/index.js';
import { ManualBroker, until } from '../support/harness.js';
import { cleanupRedis, redisRepository } from '../support/redis.js';

afterEach(cleanupRedis);

function record(uuid: string, version: number, status: Status = SagaStatus.Paused, createdAt = 1_000, sagaName = 'order'): SagaRecord {
  return {
    format: RECORD_FORMAT,
    uuid,
    sagaName,
    definitionHash: 'abc',
    version,
    status,
    createdAt,
    updatedAt: createdAt + version,
    snapshot: { value: 'x', n: version },
    outbox: [],
    timer: null,
  };
}

describe('RedisSagaRepository', () => {
  it('creates, updates with compare-and-set, and refuses a stale version', async () => {
    const repo = redisRepository();
    await repo.store(record('a', 1), null);
    await repo.store(record('a', 2), 1);
    expect((await repo.load('a'))?.version).toBe(2);
    await expect(repo.store(record('a', 2), 1)).rejects.toBeInstanceOf(SagaVersionConflictError);
    await expect(repo.store(record('a', 1), null)).rejects.toMatchObject({ code: 'SAGA_VERSION_CONFLICT', actual: 2 });
    await expect(repo.store(record('b', 2), 1)).rejects.toMatchObject({ code: 'SAGA_VERSION_CONFLICT', actual: null });
    expect(await repo.load('missing')).toBeNull();
    expect(await repo.delete('a')).toBe(true);
    expect(await repo.delete('a')).toBe(false);
    expect(await repo.load('a')).toBeNull();
  });

  it('lets exactly one of two concurrent writers of the same version win', async () => {
    const repo = redisRepository();
    await repo.store(record('race', 1), null);
    const results = await Promise.allSettled([repo.store(record('race', 2), 1), repo.store(record('race', 2), 1)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['SAGA_VERSION_CONFLICT']);
  });

  it('lists by status, saga name and creation time, newest first, paging exactly over ties', async () => {
    const repo = redisRepository({ shards: 8 });
    const all: SagaRecord[] = [];
    for (let i = 0; i < 250; i++) {
      const r = record(`u${String(i).padStart(3, '0')}`, 1, i % 3 === 0 ? SagaStatus.Finished : SagaStatus.Paused, 1_000 + (i % 7), i % 2 ? 'order' : 'refund');
      all.push(r);
      await repo.store(r, null);
    }
    const expected = [...all].sort((a, b) => b.createdAt - a.createdAt || (a.uuid < b.uuid ? 1 : -1)).map((r) => r.uuid);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await repo.list({ limit: 23, cursor });
      seen.push(...page.items.map((s) => s.uuid));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 50);
    expect(seen).toEqual(expected);
    const paused = await repo.list({ status: SagaStatus.Paused, limit: 1000 });
    expect(paused.items.map((s) => s.uuid).sort()).toEqual(all.filter((r) => r.status === SagaStatus.Paused).map((r) => r.uuid).sort());
    const refundsPaused = await repo.list({ status: [SagaStatus.Paused], sagaName: 'refund', limit: 1000 });
    expect(refundsPaused.items.every((s) => s.sagaName === 'refund' && s.status === SagaStatus.Paused)).toBe(true);
    expect(refundsPaused.items).toHaveLength(all.filter((r) => r.sagaName === 'refund' && r.status === SagaStatus.Paused).length);
    const window = await repo.list({ createdAfter: 1_002, createdBefore: 1_004, limit: 1000 });
    expect(new Set(window.items.map((s) => s.createdAt))).toEqual(new Set([1_002, 1_003]));
    // A status change moves an execution between indexes.
    await repo.store(record('u001', 2, SagaStatus.Finished, 1_001, 'order'), 1);
    expect((await repo.list({ status: SagaStatus.Paused, limit: 1000 })).items.some((s) => s.uuid === 'u001')).toBe(false);
    expect((await repo.list({ status: SagaStatus.Finished, limit: 1000 })).items.some((s) => s.uuid === 'u001')).toBe(true);
  });

  it('keeps finished executions for the retention, then sweeps them with their index entries', async () => {
    const clock = new ManualClock(10_000);
    const repo = redisRepository({ retentionMs: 1_000, clock });
    await repo.store({ ...record('old', 1, SagaStatus.Finished), updatedAt: 9_000 }, null);
    await repo.store({ ...record('young', 1, SagaStatus.Errored), updatedAt: 9_900 }, null);
    await repo.store({ ...record('active', 1, SagaStatus.Paused), updatedAt: 1 }, null);
    expect(await repo.sweep()).toBe(1);
    expect(await repo.load('old')).toBeNull();
    expect((await repo.list({ limit: 10 })).items.map((s) => s.uuid).sort()).toEqual(['active', 'young']);
    clock.advance(1_000);
    expect(await repo.sweep()).toBe(1);
    expect((await repo.list({ limit: 10 })).items.map((s) => s.uuid)).toEqual(['active']);
  });

  it('refuses a broken stored record with SAGA_SNAPSHOT_INVALID', async () => {
    const repo = redisRepository({ shards: 1 });
    await repo.store(record('bad', 1), null);
    const key = (await repo.redis.keys(`*x:bad`))[0]!;
    await repo.redis.hset(key, 'body', '{not json');
    await expect(repo.load('bad')).rejects.toMatchObject({ code: 'SAGA_SNAPSHOT_INVALID' });
    await repo.redis.hset(key, 'body', JSON.stringify({ ...record('bad', 1), format: 99 }));
    await expect(repo.load('bad')).rejects.toMatchObject({ code: 'SAGA_SNAPSHOT_INVALID' });
  });
});

const SAGA = new Saga('redis-order')
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.reserve', {}))
  .onFailure(() => new SagaRequest('inventory.release', {}))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .commit();

describe('SagaManager on Redis', () => {
  it('pauses on disk, stores one version per wait, and finishes on responses', async () => {
    const repository = redisRepository();
    const broker = new ManualBroker();
    const manager = new SagaManager({ repository, broker, sagas: [SAGA] });
    const paused = await manager.run(SAGA, { pauseOnDisk: true });
    expect(manager.liveCount).toBe(0);
    const stored = await repository.load(paused.uuid);
    expect(stored).toMatchObject({ status: 'paused', version: 2 });
    expect(stored?.outbox.map((r) => r.target)).toEqual(['inventory.reserve']);
    broker.answer(broker.last('inventory.reserve'));
    await until(() => broker.requests.some((r) => r.target === 'payment.charge'), 'charge requested');
    broker.answer(broker.last('payment.charge'));
    const done = await manager.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    // created, paused at reserve, paused at charge, finished: one version each, no gaps.
    expect((await repository.load(paused.uuid))?.version).toBe(4);
    await manager.close();
  });

  it('recovers after the orchestrator is gone: another manager re-sends the outbox and finishes', async () => {
    const repository = redisRepository();
    const first = new SagaManager({ repository, broker: new ManualBroker(), sagas: [SAGA] });
    const uuids = [];
    for (let i = 0; i < 5; i++) uuids.push((await first.run(SAGA, { pauseOnDisk: true })).uuid);
    await first.close();
    const broker = new InProcessBroker();
    broker.participant('inventory', { 'inventory.reserve': () => ({}) });
    broker.participant('payment', { 'payment.charge': () => ({}) });
    const second = new SagaManager({ repository, broker, sagas: [SAGA] });
    const report = await second.recover();
    expect(report).toMatchObject({ recovered: 5, resent: 5, failed: [] });
    for (const uuid of uuids) expect((await second.waitFor(uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Finished);
    await second.close();
  });
});
