import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  InProcessBroker,
  ManualClock,
  RECORD_FORMAT,
  Saga,
  SagaManager,
  SagaRequest,
  SagaStatus,
  SagaVersionConflictError,
  RedisSagaRepository,
  type SagaRecord,
  type SagaStatus as Status,
} from '../../src/index.js';
import { collectingLogger, ManualBroker, until } from '../support/harness.js';
import { freePort } from '../support/redis-server.js';
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

  it('sweeps on its own every sweepIntervalMs, deleting only finished and errored executions whose retention ran out on the injected clock', async () => {
    const clock = new ManualClock(10_000);
    const logger = collectingLogger();
    // The timer runs every 10 ms; what is expired is decided by the clock alone, which only the test moves.
    const repo = redisRepository({ retentionMs: 1_000, sweepIntervalMs: 10, clock, shards: 2, logger });
    const gone = async (...uuids: string[]) => (await repo.loadMany(uuids)).every((r) => r === null);
    await repo.store({ ...record('old-finished', 1, SagaStatus.Finished), updatedAt: 8_000 }, null);
    await repo.store({ ...record('old-errored', 1, SagaStatus.Errored), updatedAt: 8_999 }, null);
    await repo.store({ ...record('young-finished', 1, SagaStatus.Finished), updatedAt: 9_500 }, null);
    await repo.store({ ...record('old-paused', 1, SagaStatus.Paused), updatedAt: 1 }, null);
    await repo.store({ ...record('old-running', 1, SagaStatus.Running), updatedAt: 1 }, null);
    await until(() => gone('old-finished', 'old-errored'), 'a timed sweep deleted the expired executions');
    // A later sweep has run once a canary stored after the first is gone too: it left the others.
    await repo.store({ ...record('canary-1', 1, SagaStatus.Finished), updatedAt: 1 }, null);
    await until(() => gone('canary-1'), 'a later timed sweep ran');
    const left = async () => (await repo.list({ limit: 10 })).items.map((s) => s.uuid).sort();
    expect(await left()).toEqual(['old-paused', 'old-running', 'young-finished']);

    // The clock moves past the young one's retention (9,500 + 1,000): the next sweeps take it, and only it.
    clock.advance(1_001);
    await until(() => gone('young-finished'), 'a timed sweep deleted the execution whose retention ran out');
    await repo.store({ ...record('canary-2', 1, SagaStatus.Errored), updatedAt: 1 }, null);
    await until(() => gone('canary-2'), 'a later timed sweep ran');
    expect(await left()).toEqual(['old-paused', 'old-running']);
    // Index entries went with the records.
    expect((await repo.list({ status: [SagaStatus.Finished, SagaStatus.Errored], limit: 10 })).items).toEqual([]);
    expect(logger.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
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

/**
 * MONITOR on the test Redis, narrowed to one repository's keys: the script calls it made and the
 * commands its scripts ran (Redis shows those with source "lua").
 */
async function watch(repo: RedisSagaRepository) {
  const monitor = await (repo.redis as Redis).monitor();
  const seen: Array<{ source: string; args: string[] }> = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ source, args }));
  const ours = (args: readonly string[]) => args.some((a) => a.startsWith(repo.keyPrefix));
  let from = 0;
  return {
    /** Resolves once every command the repository sent before now has shown up. */
    async sync(): Promise<void> {
      const marker = `sync-${Math.random()}`;
      await repo.redis.echo(marker);
      await until(() => seen.some((l) => l.args[0]?.toLowerCase() === 'echo' && l.args[1] === marker), 'MONITOR caught up');
    },
    /** Script calls (EVALSHA/EVAL) on this repository's keys since the last `take()`. */
    scriptCalls(): string[][] {
      return seen.slice(from).filter((l) => l.source !== 'lua' && /^eval(sha)?$/i.test(l.args[0] ?? '') && ours(l.args)).map((l) => l.args);
    },
    /** Commands run inside scripts on this repository's keys since the last `take()`, as `[command, key without prefix, ...rest]`. */
    luaCommands(): string[][] {
      return seen
        .slice(from)
        .filter((l) => l.source === 'lua' && ours(l.args))
        .map(({ args: [cmd, key, ...rest] }) => [cmd!.toLowerCase(), key!.slice(repo.keyPrefix.length), ...rest]);
    },
    take(): void {
      from = seen.length;
    },
    stop: () => monitor.disconnect(),
  };
}

describe('RedisSagaRepository group commit', () => {
  it('sends the stores of one tick as one script call per 32 records, and a lone store at once', async () => {
    const repo = redisRepository();
    const mon = await watch(repo);
    try {
      const batch = (n: number, tag: string) => Array.from({ length: n }, (_, i) => record(`${tag}-${i}`, 1, SagaStatus.Running, 1_000 + i));
      // 20 creates over 16 shards in one tick: one call.
      await Promise.all(batch(20, 'a').map((r) => repo.store(r, null)));
      await mon.sync();
      expect(mon.scriptCalls()).toHaveLength(1);
      expect(repo.storeCalls).toBe(1);
      mon.take();
      // 70 in one tick: 32 + 32 + 6.
      await Promise.all(batch(70, 'b').map((r) => repo.store(r, null)));
      await mon.sync();
      const calls = mon.scriptCalls();
      expect(calls).toHaveLength(3);
      // EVALSHA sha numkeys KEYS... n nonce finals ...: the record count follows the keys.
      expect(calls.map((args) => Number(args[3 + Number(args[2])]))).toEqual([32, 32, 6]);
      mon.take();
      // One at a time: each goes out on its own, without waiting for company.
      for (const r of batch(3, 'c')) await repo.store(r, null);
      await mon.sync();
      expect(mon.scriptCalls()).toHaveLength(3);
      const loaded = await repo.loadMany([...batch(20, 'a'), ...batch(70, 'b'), ...batch(3, 'c')].map((r) => r.uuid));
      expect(loaded.every((r) => r?.version === 1 && r.status === SagaStatus.Running)).toBe(true);
      expect((await repo.list({ limit: 1000 })).items).toHaveLength(93);
    } finally {
      mon.stop();
    }
  });

  it('keeps call order: a load or delete called after a store in the same tick is not overtaken by it', async () => {
    const repo = redisRepository();
    const [, loaded] = await Promise.all([repo.store(record('o1', 1), null), repo.load('o1')]);
    expect(loaded?.version).toBe(1);
    const [, deleted] = await Promise.all([repo.store(record('o2', 1), null), repo.delete('o2')]);
    expect(deleted).toBe(true);
    expect(await repo.load('o2')).toBeNull();
    const [, many, page] = await Promise.all([repo.store(record('o3', 1), null), repo.loadMany(['o3']), repo.list({ limit: 10 })]);
    expect(many.map((r) => r?.uuid)).toEqual(['o3']);
    expect(page.items.map((s) => s.uuid).sort()).toEqual(['o1', 'o3']);
  });

  it('can be turned off: maxStoreBatch 1 makes one call per store', async () => {
    const repo = redisRepository({ maxStoreBatch: 1 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => repo.store(record(`one-${i}`, 1), null)));
    expect(repo.storeCalls).toBe(5);
    expect(() => redisRepository({ maxStoreBatch: 0 })).toThrow(/maxStoreBatch/);
  });

  it('gives each caller in a batch its own outcome: conflicts reject their caller only, the rest are stored, in call order', async () => {
    const repo = redisRepository({ shards: 4 });
    await repo.store(record('a', 1), null);
    await repo.store(record('b', 1), null);
    await repo.store(record('b', 2), 1);
    const callsBefore = repo.storeCalls;
    const outcomes = await Promise.allSettled([
      repo.store(record('a', 2), 1), // stored
      repo.store(record('a', 2), 1), // same version again, in the same call: conflict with the first
      repo.store(record('b', 2), 1), // stale: b is at 2
      repo.store(record('c', 1), null), // created
      repo.store(record('c', 1), null), // created twice in one call: conflict
      repo.store(record('d', 3), 2), // d does not exist
      repo.store(record('e', 1), null), // created, then
      repo.store(record('e', 2), 1), // updated in the same call
      repo.store(record('b', 1), null), // b exists
    ]);
    expect(repo.storeCalls - callsBefore).toBe(1);
    const summary = outcomes.map((o) => (o.status === 'fulfilled' ? 'stored' : { code: o.reason.code, uuid: o.reason.uuid, expected: o.reason.expected, actual: o.reason.actual }));
    expect(summary).toEqual([
      'stored',
      { code: 'SAGA_VERSION_CONFLICT', uuid: 'a', expected: 1, actual: 2 },
      { code: 'SAGA_VERSION_CONFLICT', uuid: 'b', expected: 1, actual: 2 },
      'stored',
      { code: 'SAGA_VERSION_CONFLICT', uuid: 'c', expected: 0, actual: 1 },
      { code: 'SAGA_VERSION_CONFLICT', uuid: 'd', expected: 2, actual: null },
      'stored',
      'stored',
      { code: 'SAGA_VERSION_CONFLICT', uuid: 'b', expected: 0, actual: 2 },
    ]);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(SagaVersionConflictError);
    expect((await repo.loadMany(['a', 'b', 'c', 'd', 'e'])).map((r) => r?.version ?? null)).toEqual([2, 2, 1, null, 2]);
  });

  it('rejects every caller of a call that fails, and the stores of the next tick still go', async () => {
    const repo = redisRepository();
    const client = repo.redis as unknown as { sagaStoreMany: (...args: unknown[]) => Promise<unknown> };
    const original = client.sagaStoreMany;
    client.sagaStoreMany = () => Promise.reject(new Error('connection lost'));
    const failed = await Promise.allSettled([repo.store(record('f1', 1), null), repo.store(record('f2', 1), null)]);
    expect(failed.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'stored'))).toEqual(['connection lost', 'connection lost']);
    client.sagaStoreMany = original;
    await Promise.all([repo.store(record('f1', 1), null), repo.store(record('f2', 1), null)]);
    expect((await repo.loadMany(['f1', 'f2'])).map((r) => r?.version)).toEqual([1, 1]);
  });

  it('is idempotent for a re-sent call: it finds its own writes, while any other call for those versions conflicts', async () => {
    const repo = redisRepository({ shards: 2 });
    const client = repo.redis as unknown as { sagaStoreMany: (...args: unknown[]) => Promise<unknown> };
    const original = client.sagaStoreMany.bind(client);
    let sent: unknown[] = [];
    client.sagaStoreMany = (...args: unknown[]) => {
      sent = args;
      return original(...args);
    };
    await repo.store(record('x', 1), null);
    await repo.store(record('y', 1), null);
    await Promise.all([repo.store(record('x', 2), 1), repo.store(record('y', 2, SagaStatus.Finished), 1), repo.store(record('z', 1), null)]);
    const call = [...sent];
    // What ioredis does for a command that got no reply before a reconnect: the same call again.
    expect(await original(...call)).toEqual([0, 0, 0]);
    expect((await repo.loadMany(['x', 'y', 'z'])).map((r) => r?.version)).toEqual([2, 2, 1]);
    expect((await repo.list({ status: SagaStatus.Finished })).items.map((s) => s.uuid)).toEqual(['y']);
    // Another call with the same records but its own nonce is someone else: conflicts.
    const numberOfKeys = call[0] as number;
    const other = [...call];
    other[numberOfKeys + 2] = 'another-nonce';
    expect(await original(...other)).toEqual([2, 2, 1]);
    // Once the execution moved on, even the same call is a conflict (the write is no longer the latest).
    await repo.store(record('x', 3), 2);
    expect(await original(...call)).toEqual([3, 0, 0]);
  });

  it('touches only what changed: the record once, all and saga indexes on create, status indexes on a change, expiry on entering or leaving a final status', async () => {
    const repo = redisRepository({ shards: 1, retentionMs: 1_000 });
    const mon = await watch(repo);
    const P = '{0}:';
    const steps: Array<[Status, string[][]]> = [
      [SagaStatus.Created, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zadd', `${P}all`], ['zadd', `${P}saga:order`], ['zadd', `${P}st:created`]]],
      [SagaStatus.Running, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zrem', `${P}st:created`], ['zadd', `${P}st:running`]]],
      [SagaStatus.Paused, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zrem', `${P}st:running`], ['zadd', `${P}st:paused`]]],
      [SagaStatus.Paused, [['hmget', `${P}x:a`], ['hset', `${P}x:a`]]],
      [SagaStatus.Finished, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zrem', `${P}st:paused`], ['zadd', `${P}st:finished`], ['zadd', `${P}exp`]]],
      [SagaStatus.Errored, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zrem', `${P}st:finished`], ['zadd', `${P}st:errored`], ['zadd', `${P}exp`]]],
      [SagaStatus.Running, [['hmget', `${P}x:a`], ['hset', `${P}x:a`], ['zrem', `${P}st:errored`], ['zadd', `${P}st:running`], ['zrem', `${P}exp`]]],
    ];
    try {
      for (const [i, [status, want]] of steps.entries()) {
        mon.take();
        await repo.store({ ...record('a', i + 1, status), timer: { at: 9_000 + i, event: { type: 'saga.deadline', step: 's', phase: 'execute', attempt: 1 } } }, i === 0 ? null : i);
        await mon.sync();
        const ran = mon.luaCommands();
        expect({ step: i, status, ran: ran.map(([cmd, key]) => [cmd, key]) }).toEqual({ step: i, status, ran: want });
        const fields = ran.find(([cmd]) => cmd === 'hset')!.slice(2).filter((_, j) => j % 2 === 0);
        // The body is written once; what cannot change after create is not written again.
        expect(fields.filter((f) => f === 'body')).toHaveLength(1);
        if (i > 0) expect(fields.filter((f) => ['saga', 'hash', 'created'].includes(f))).toEqual([]);
        if (i > 0) expect(fields.includes('status')).toBe(steps[i - 1]![0] !== status);
      }
    } finally {
      mon.stop();
    }
    const key = (k: string) => `${repo.keyPrefix}${P}${k}`;
    const member = `${String(1_000).padStart(15, '0')}:a`;
    expect(await repo.redis.zrange(key('all'), 0, -1)).toEqual([member]);
    expect(await repo.redis.zrange(key('st:running'), 0, -1)).toEqual([member]);
    for (const s of [SagaStatus.Created, SagaStatus.Paused, SagaStatus.Finished, SagaStatus.Errored]) expect(await repo.redis.zcard(key(`st:${s}`))).toBe(0);
    expect(await repo.redis.zcard(key('exp'))).toBe(0);
    expect(await repo.redis.hmget(key('x:a'), 'v', 'status', 'saga', 'created', 'deadline')).toEqual(['7', 'running', 'order', '1000', '9006']);
    expect(await repo.delete('a')).toBe(true);
    expect(await repo.redis.keys(`${repo.keyPrefix}*`)).toEqual([]);
  });
});

describe('RedisSagaRepository made from a URL', () => {
  it('reports its client’s connection errors through the logger, one line per 5 s, instead of ioredis printing them', async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const clock = new ManualClock(0);
    const logger = collectingLogger();
    // Not from redisRepository(): there is nothing to clear on a server that is not there.
    const repo = new RedisSagaRepository({ redis: `redis://127.0.0.1:${await freePort()}`, logger, clock, redisOptions: { retryStrategy: () => 20 } });
    try {
      await until(() => logger.lines.length >= 1, 'the first connection error is logged');
      // Reconnects keep failing every 20 ms; the clock stands still, so nothing more is logged.
      await new Promise((r) => setTimeout(r, 200));
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatchObject({ level: 'warn', message: 'Redis connection error', fields: { error: expect.stringContaining('ECONNREFUSED') } });
      clock.advance(5_000);
      await until(() => logger.lines.length >= 2, 'a second line once 5 s have passed');
      expect(logger.lines[1]).toMatchObject({ level: 'warn', fields: { suppressed: expect.any(Number) } });
      expect(logger.lines[1]!.fields!['suppressed']).toBeGreaterThanOrEqual(3);
      expect(stderr.mock.calls.filter((c) => String(c[0]).includes('[ioredis]'))).toEqual([]);
    } finally {
      await repo.close();
      stderr.mockRestore();
    }
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
    expect(stored).toMatchObject({ status: 'paused' });
    // 1, or 2 where the manager also stores the execution before its first wait.
    const atFirstWait = stored!.version;
    expect([1, 2]).toContain(atFirstWait);
    expect(stored?.outbox.map((r) => r.target)).toEqual(['inventory.reserve']);
    broker.answer(broker.last('inventory.reserve'));
    await until(() => broker.requests.some((r) => r.target === 'payment.charge'), 'charge requested');
    broker.answer(broker.last('payment.charge'));
    const done = await manager.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    // Paused at reserve, paused at charge, then a version for each vote and acknowledgement of the
    // two services, the last one finished: one version each, no gaps.
    expect((await repository.load(paused.uuid))?.version).toBe(atFirstWait + 2 + 4);
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
