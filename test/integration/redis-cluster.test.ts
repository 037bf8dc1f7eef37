import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECORD_FORMAT, RedisSagaRepository, Saga, SagaManager, SagaRequest, SagaStatus, SagaVersionConflictError, type SagaRecord } from '../../src/index.js';
import { RedisKeyLayout } from '../../src/repositories/redis-key-layout.js';
import { clearRedisPrefix } from '../support/clear-redis-prefix.js';
import { ManualBroker, until } from '../support/harness.js';
import { freePort, RedisServerProcess } from '../support/redis-server.js';

const run = promisify(execFile);

// A three-master Redis Cluster owned by this file: started on free ports, stopped by pid.
const nodes: RedisServerProcess[] = [];
let dir = '';
let cluster: Cluster;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sagachart-cluster-'));
  for (let i = 0; i < 3; i++) {
    const node = new RedisServerProcess(await freePort(), dir, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--appendfilename', `aof-${i}.aof`, '--appenddirname', `aof-${i}`]);
    nodes.push(node);
    await node.start();
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  cluster = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { redisOptions: { maxRetriesPerRequest: null } });
  await until(async () => (await cluster.cluster('INFO').catch(() => '')).includes('cluster_state:ok'), 'the cluster is ok', 20_000);
}, 60_000);

afterAll(async () => {
  cluster?.disconnect();
  for (const node of nodes) await node.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const record = (uuid: string, version: number, createdAt: number, status: SagaStatus = SagaStatus.Paused): SagaRecord => ({
  format: RECORD_FORMAT,
  uuid,
  sagaName: 'clustered',
  definitionHash: 'h',
  version,
  status,
  createdAt,
  updatedAt: createdAt,
  snapshot: {},
  outbox: [],
  timer: null,
});

describe('RedisSagaRepository on a Redis Cluster', () => {
  it('spreads shards over the masters, and stores, pages and sweeps with the same code', async () => {
    const repo = new RedisSagaRepository({ redis: cluster, keyPrefix: 'sagachart-cluster-test:', shards: 16, retentionMs: 0 });
    for (let i = 0; i < 120; i++) await repo.store(record(`c${String(i).padStart(3, '0')}`, 1, 1_000 + (i % 5)), null);
    await repo.store(record('c000', 2, 1_000, SagaStatus.Finished), 1);
    await expect(repo.store(record('c000', 2, 1_000), 1)).rejects.toBeInstanceOf(SagaVersionConflictError);
    // The shards really live on different masters.
    const perNode = await Promise.all(cluster.nodes('master').map(async (n) => (await n.keys('sagachart-cluster-test:*')).length));
    expect(perNode.filter((count) => count > 0).length).toBeGreaterThan(1);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await repo.list({ limit: 17, cursor });
      seen.push(...page.items.map((s) => s.uuid));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect((await repo.list({ status: SagaStatus.Finished })).items.map((s) => s.uuid)).toEqual(['c000']);
    expect(await repo.sweep()).toBe(1);
    expect(await repo.load('c000')).toBeNull();
    await clearRedisPrefix(repo.redis, repo.keyPrefix);
    await repo.close();
  });

  it('group-commits a batch that mixes shards as one call per shard (a script may touch one slot), each caller with its own outcome', async () => {
    const repo = new RedisSagaRepository({ redis: cluster, keyPrefix: 'sagachart-cluster-batch:', shards: 16 });
    try {
      const uuids = Array.from({ length: 48 }, (_, i) => `g${String(i).padStart(2, '0')}`);
      const layout = new RedisKeyLayout('sagachart-cluster-batch:', 16);
      const shards = new Set(uuids.map((u) => layout.shardOf(u)));
      expect(shards.size).toBeGreaterThan(4);
      await Promise.all(uuids.map((u, i) => repo.store(record(u, 1, 2_000 + i), null)));
      expect(repo.storeCalls).toBe(shards.size);
      // One tick: updates, a stale one, a duplicate create, over every shard.
      const before = repo.storeCalls;
      const outcomes = await Promise.allSettled([
        ...uuids.map((u, i) => repo.store(record(u, 2, 2_000 + i, SagaStatus.Finished), 1)),
        repo.store(record('g00', 2, 2_000), 1),
        repo.store(record('g01', 1, 2_001), null),
      ]);
      expect(repo.storeCalls - before).toBe(shards.size);
      expect(outcomes.slice(0, 48).every((o) => o.status === 'fulfilled')).toBe(true);
      expect(outcomes.slice(48).map((o) => (o.status === 'rejected' ? [o.reason.code, o.reason.uuid, o.reason.actual] : 'stored'))).toEqual([
        ['SAGA_VERSION_CONFLICT', 'g00', 2],
        ['SAGA_VERSION_CONFLICT', 'g01', 2],
      ]);
      const loaded = await repo.loadMany([...uuids].reverse());
      expect(loaded.map((r) => [r?.uuid, r?.version, r?.status])).toEqual([...uuids].reverse().map((u) => [u, 2, SagaStatus.Finished]));
      expect((await repo.list({ status: SagaStatus.Finished, limit: 100 })).items).toHaveLength(48);
      expect((await repo.list({ status: SagaStatus.Paused, limit: 100 })).items).toHaveLength(0);
    } finally {
      await clearRedisPrefix(repo.redis, repo.keyPrefix);
      await repo.close();
    }
  });

  it('runs a saga paused on disk through a SagaManager', async () => {
    const repository = new RedisSagaRepository({ redis: cluster, keyPrefix: 'sagachart-cluster-saga:' });
    const saga = new Saga('clustered').remoteStep('a').onExecute(() => new SagaRequest('svc.a', {})).commit();
    const broker = new ManualBroker();
    const manager = new SagaManager({ repository, broker, sagas: [saga] });
    const paused = await manager.run(saga, { pauseOnDisk: true });
    await until(() => broker.requests.length === 1, 'the request is sent');
    broker.answer(broker.requests[0]!);
    expect((await manager.waitFor(paused.uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Finished);
    await manager.close();
    await clearRedisPrefix(repository.redis, repository.keyPrefix);
    await repository.close();
  });
});
