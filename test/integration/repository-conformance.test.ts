import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSagaRepository,
  RECORD_FORMAT,
  SagaSnapshotError,
  SagaStatus,
  SagaVersionConflictError,
  type SagaListFilter,
  type SagaRecord,
  type SagaRecordSummary,
  type SagaRepository,
} from '../../src/index.js';
import { collectingLogger } from '../support/harness.js';
import { CorruptibleInMemoryRepository } from '../support/corruptible-repository.js';
import { cleanupRedis, redisRepository } from '../support/redis.js';

// One suite every repository must pass (STYLE.md §13): the same tests, run against each adapter,
// so that the in-memory one cannot drift from the durable ones.

interface Adapter {
  name: string;
  /** A fresh, empty repository of its own (a new directory, a new key prefix). */
  open(): Promise<SagaRepository>;
  /** Replaces the stored text of an execution behind the repository's back. */
  corrupt(repository: SagaRepository, uuid: string, text: string): Promise<void>;
  /** Closes what `open()` opened and removes what it left. */
  cleanup(): Promise<void>;
}

const dirs: string[] = [];
const files: FileSagaRepository[] = [];

const ADAPTERS: Adapter[] = [
  {
    name: 'InMemorySagaRepository',
    open: async () => new CorruptibleInMemoryRepository(),
    corrupt: async (repository, uuid, text) => (repository as CorruptibleInMemoryRepository).corrupt(uuid, text),
    cleanup: async () => undefined,
  },
  {
    name: 'FileSagaRepository',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'sagachart-conformance-'));
      dirs.push(dir);
      const repository = await FileSagaRepository.open({ dir, logger: collectingLogger() });
      files.push(repository);
      return repository;
    },
    corrupt: async (repository, uuid, text) => writeFile(join((repository as FileSagaRepository).dir, 'executions', `${uuid}.json`), text),
    async cleanup() {
      for (const repository of files.splice(0)) await repository.close();
      for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  },
  {
    name: 'RedisSagaRepository',
    // Few shards, so that ties and paging cross shards and also meet within one.
    open: async () => redisRepository({ shards: 4, logger: collectingLogger() }),
    async corrupt(repository, uuid, text) {
      const { redis, keyPrefix } = repository as ReturnType<typeof redisRepository>;
      const [key, ...more] = await redis.keys(`${keyPrefix}*x:${uuid}`);
      expect(more).toEqual([]);
      expect(key).toBeDefined();
      await redis.hset(key!, 'body', text);
    },
    cleanup: cleanupRedis,
  },
];

function record(uuid: string, fields: Partial<SagaRecord> = {}): SagaRecord {
  return {
    format: RECORD_FORMAT,
    uuid,
    sagaName: 'order',
    definitionHash: 'h1',
    version: 1,
    status: SagaStatus.Paused,
    createdAt: 1_000,
    updatedAt: 1_000,
    snapshot: { value: { running: { reserve: 'paused-by-on-execute' } }, context: { uuid, qty: 2, tags: ['a', 'b'], note: 'ünïcødé ✓', nested: { n: null, t: true } } },
    outbox: [],
    timer: null,
    ...fields,
  };
}

/** The request shape the manager stores, so that a record round-trips a realistic outbox and timer. */
function waiting(uuid: string, version: number, fields: Partial<SagaRecord> = {}): SagaRecord {
  return record(uuid, {
    version,
    updatedAt: 1_000 + version,
    outbox: [{ requestId: `${uuid}:reserve:execute:${version}`, uuid, target: 'inventory.reserve', content: { qty: version }, step: 'reserve', phase: 'execute', attempt: version } as never],
    timer: { at: 50_000 + version, event: { type: 'saga.deadline', step: 'reserve', phase: 'execute', attempt: version } },
    ...fields,
  });
}

const newestFirst = (a: { createdAt: number; uuid: string }, b: { createdAt: number; uuid: string }) =>
  b.createdAt - a.createdAt || (a.uuid < b.uuid ? 1 : a.uuid > b.uuid ? -1 : 0);

/** What a filter should return, computed from the records stored, independently of any repository. */
function expectedIds(records: Iterable<SagaRecord>, filter: SagaListFilter): string[] {
  const statuses = filter.status === undefined ? undefined : typeof filter.status === 'string' ? [filter.status] : filter.status;
  return [...records]
    .filter((r) => statuses === undefined || statuses.includes(r.status))
    .filter((r) => filter.sagaName === undefined || r.sagaName === filter.sagaName)
    .filter((r) => filter.createdAfter === undefined || r.createdAt >= filter.createdAfter)
    .filter((r) => filter.createdBefore === undefined || r.createdAt < filter.createdBefore)
    .sort(newestFirst)
    .map((r) => r.uuid);
}

/** Every page of a listing, following cursors. */
async function listAll(repository: SagaRepository, filter: SagaListFilter): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await repository.list({ ...filter, cursor });
    expect(page.items.length).toBeLessThanOrEqual(filter.limit ?? 100);
    ids.push(...page.items.map((s) => s.uuid));
    cursor = page.cursor;
    pages++;
  } while (cursor && pages < 500);
  return { ids, pages };
}

const STATUS_CYCLE = [SagaStatus.Running, SagaStatus.Paused, SagaStatus.Finished, SagaStatus.Errored];

const conflict = (p: Promise<unknown>) => p.then(() => 'stored', (err: unknown) => err);

describe.each(ADAPTERS)('SagaRepository conformance: $name', (adapter) => {
  let repo: SagaRepository;

  beforeEach(async () => {
    repo = await adapter.open();
  });

  afterEach(async () => {
    await adapter.cleanup();
  });

  describe('store and load', () => {
    it('creates with expected null and loads back exactly what was stored (a JSON round trip)', async () => {
      const r = waiting('exec-1', 1);
      await repo.store(r, null);
      const loaded = await repo.load('exec-1');
      expect(loaded).toEqual(JSON.parse(JSON.stringify(r)));
      expect(loaded).not.toBe(r);
      // A second load is just as exact: nothing is shared with what the first returned.
      (loaded!.snapshot as { context: { qty: number } }).context.qty = 99;
      expect(await repo.load('exec-1')).toEqual(r);
    });

    it('keeps what was stored even if the caller changes its record object afterwards', async () => {
      const r = waiting('exec-1', 1);
      const storing = repo.store(r, null);
      (r.snapshot as { context: { qty: number } }).context.qty = -1;
      r.status = SagaStatus.Errored;
      await storing;
      expect(await repo.load('exec-1')).toMatchObject({ status: SagaStatus.Paused, snapshot: { context: { qty: 2 } } });
    });

    it('updates with compare-and-set: each version over the one before', async () => {
      await repo.store(waiting('a', 1), null);
      for (let v = 2; v <= 6; v++) await repo.store(waiting('a', v, { status: v === 6 ? SagaStatus.Finished : SagaStatus.Paused }), v - 1);
      expect(await repo.load('a')).toEqual(waiting('a', 6, { status: SagaStatus.Finished }));
    });

    it('refuses a store over the wrong version with SagaVersionConflictError naming uuid, expected and actual', async () => {
      await repo.store(waiting('a', 1), null);
      await repo.store(waiting('a', 2), 1);
      const stale = await conflict(repo.store(waiting('a', 2, { snapshot: { by: 'stale' } }), 1));
      expect(stale).toBeInstanceOf(SagaVersionConflictError);
      expect(stale).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', uuid: 'a', expected: 1, actual: 2 });
      expect((stale as Error).message).toContain("'a'");
      const ahead = await conflict(repo.store(waiting('a', 4), 3));
      expect(ahead).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', uuid: 'a', expected: 3, actual: 2 });
      const missing = await conflict(repo.store(waiting('nobody', 4), 3));
      expect(missing).toBeInstanceOf(SagaVersionConflictError);
      expect(missing).toMatchObject({ uuid: 'nobody', expected: 3, actual: null });
      // Nothing was written by the refused stores.
      expect(await repo.load('a')).toEqual(waiting('a', 2));
      expect(await repo.load('nobody')).toBeNull();
    });

    it('refuses to create a uuid that exists (expected null), naming the stored version', async () => {
      await repo.store(waiting('a', 1), null);
      await repo.store(waiting('a', 2), 1);
      const again = await conflict(repo.store(waiting('a', 1, { snapshot: { by: 'second creator' } }), null));
      expect(again).toBeInstanceOf(SagaVersionConflictError);
      expect(again).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', uuid: 'a', expected: 0, actual: 2 });
      expect(await repo.load('a')).toEqual(waiting('a', 2));
    });

    it('enforces the version rule: record.version must be expected + 1 (RangeError, nothing stored)', async () => {
      await expect(repo.store(waiting('a', 2), null)).rejects.toThrow(RangeError);
      await expect(repo.store(waiting('a', 0), null)).rejects.toThrow(/version must be 1/);
      expect(await repo.load('a')).toBeNull();
      await repo.store(waiting('a', 1), null);
      await expect(repo.store(waiting('a', 3), 1)).rejects.toThrow(RangeError);
      await expect(repo.store(waiting('a', 1), 1)).rejects.toThrow(/version must be 2/);
      expect((await repo.load('a'))?.version).toBe(1);
    });

    it('lets exactly one of concurrent stores over the same version win; the loser gets a conflict', async () => {
      await repo.store(waiting('race', 1), null);
      for (let v = 2; v <= 4; v++) {
        const results = await Promise.allSettled([1, 2, 3].map((by) => repo.store(waiting('race', v, { snapshot: { by } }), v - 1)));
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i + 1] : []));
        const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(2);
        for (const err of lost) expect(err).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', expected: v - 1, actual: v });
        expect((await repo.load('race'))?.snapshot).toEqual({ by: won[0] });
      }
      const creates = await Promise.allSettled([repo.store(waiting('new', 1), null), repo.store(waiting('new', 1), null)]);
      expect(creates.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    });

    it('loads null for an unknown uuid', async () => {
      expect(await repo.load('never-stored')).toBeNull();
    });

    it('throws SagaSnapshotError for a stored record that cannot be read', async () => {
      await repo.store(waiting('bad', 1), null);
      await adapter.corrupt(repo, 'bad', '{"format":1, broken');
      const err = await repo.load('bad').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SagaSnapshotError);
      expect(err).toMatchObject({ code: 'SAGA_SNAPSHOT_INVALID', uuid: 'bad' });
      await adapter.corrupt(repo, 'bad', JSON.stringify({ ...waiting('bad', 1), format: 99 }));
      await expect(repo.load('bad')).rejects.toThrow(/unknown record format 99/);
    });
  });

  describe('loadMany', () => {
    it('returns the records in the order given, null for unknown ones, duplicates answered twice', async () => {
      const stored = ['m-3', 'm-1', 'm-2'].map((uuid, i) => waiting(uuid, 1, { createdAt: 1_000 + i }));
      for (const r of stored) await repo.store(r, null);
      await repo.store(waiting('m-2', 2, { createdAt: 1_002, status: SagaStatus.Running }), 1);
      const got = await repo.loadMany(['m-2', 'nope', 'm-1', 'm-3', 'm-1']);
      expect(got).toEqual([waiting('m-2', 2, { createdAt: 1_002, status: SagaStatus.Running }), null, stored[1], stored[0], stored[1]]);
      expect(await repo.loadMany([])).toEqual([]);
      expect(await repo.loadMany(['x', 'y'])).toEqual([null, null]);
    });

    it('reads many at once: 300 records in one call, each exactly', async () => {
      const uuids = Array.from({ length: 300 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
      await Promise.all(uuids.map((uuid, i) => repo.store(waiting(uuid, 1, { createdAt: i }), null)));
      const reversed = [...uuids].reverse();
      const got = await repo.loadMany(reversed);
      expect(got).toHaveLength(300);
      got.forEach((r, i) => expect(r).toEqual(waiting(reversed[i]!, 1, { createdAt: 299 - i })));
    });

    it('throws SagaSnapshotError when one of them cannot be read, like load', async () => {
      await repo.store(waiting('ok', 1), null);
      await repo.store(waiting('bad', 1), null);
      await adapter.corrupt(repo, 'bad', 'not json at all');
      const err = await repo.loadMany(['ok', 'bad']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SagaSnapshotError);
      expect(err).toMatchObject({ uuid: 'bad' });
    });
  });

  describe('delete', () => {
    it('returns true, then false; the record is gone from load, loadMany and list, and the uuid can be created again', async () => {
      await repo.store(waiting('a', 1), null);
      await repo.store(waiting('a', 2, { status: SagaStatus.Finished }), 1);
      await repo.store(waiting('b', 1), null);
      expect(await repo.delete('a')).toBe(true);
      expect(await repo.delete('a')).toBe(false);
      expect(await repo.delete('never-stored')).toBe(false);
      expect(await repo.load('a')).toBeNull();
      expect(await repo.loadMany(['a', 'b'])).toEqual([null, waiting('b', 1)]);
      expect((await repo.list()).items.map((s) => s.uuid)).toEqual(['b']);
      expect((await repo.list({ status: SagaStatus.Finished })).items).toEqual([]);
      expect((await repo.list({ sagaName: 'order' })).items.map((s) => s.uuid)).toEqual(['b']);
      await repo.store(waiting('a', 1), null);
      expect((await repo.load('a'))?.version).toBe(1);
      expect((await repo.list({ status: SagaStatus.Paused })).items.map((s) => s.uuid).sort()).toEqual(['a', 'b']);
    });
  });

  describe('list', () => {
    const STATUSES = [SagaStatus.Created, SagaStatus.Running, SagaStatus.Paused, SagaStatus.Finished, SagaStatus.Errored];
    /** 40 records over 5 statuses, 3 saga names and 8 creation times, stored in an order unrelated to any of them. */
    async function dataset(): Promise<Map<string, SagaRecord>> {
      const records = new Map<string, SagaRecord>();
      for (let i = 0; i < 40; i++) {
        const n = (i * 17) % 40;
        const r = record(`r-${String(n).padStart(2, '0')}`, {
          status: STATUSES[n % 5]!,
          sagaName: ['order', 'refund', 'ship'][n % 3]!,
          createdAt: 1_000 + (n % 8) * 10,
          updatedAt: 5_000 + n,
        });
        records.set(r.uuid, r);
        await repo.store(r, null);
      }
      return records;
    }

    it('lists every record newest first, ties broken by uuid descending', async () => {
      const records = await dataset();
      const page = await repo.list({ limit: 1_000 });
      expect(page.cursor).toBeNull();
      expect(page.items.map((s) => s.uuid)).toEqual(expectedIds(records.values(), {}));
      // Spot check of the rule itself, not only of the helper: createdAt descending, then uuid descending.
      for (let i = 1; i < page.items.length; i++) {
        const [a, b] = [page.items[i - 1]!, page.items[i]!];
        expect(a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.uuid > b.uuid)).toBe(true);
      }
    });

    it('counts by status, and follows stores that change a status and deletes', async () => {
      const records = await dataset();
      const expected = Object.fromEntries(STATUSES.map((st) => [st, [...records.values()].filter((r) => r.status === st).length]));
      expect(await repo.count!()).toEqual(expected);
      const moved = records.get('r-01')!;
      await repo.store({ ...moved, version: 2, status: SagaStatus.Finished }, 1);
      await repo.delete('r-02');
      const after = { ...expected, [moved.status]: expected[moved.status]! - 1, [SagaStatus.Finished]: expected[SagaStatus.Finished]! + 1 };
      after[records.get('r-02')!.status]!--;
      expect(await repo.count!()).toEqual(after);
    });

    it('filters by status (one or several), saga name and creation time, combined with AND', async () => {
      const records = await dataset();
      const filters: SagaListFilter[] = [
        { status: SagaStatus.Paused },
        { status: [SagaStatus.Running, SagaStatus.Errored] },
        { status: STATUSES },
        { status: [] },
        { sagaName: 'refund' },
        { sagaName: 'nothing-by-this-name' },
        { createdAfter: 1_030 },
        { createdBefore: 1_030 },
        { createdAfter: 1_020, createdBefore: 1_050 },
        { status: SagaStatus.Paused, sagaName: 'order' },
        { status: [SagaStatus.Created, SagaStatus.Finished], sagaName: 'ship', createdAfter: 1_010 },
        { status: [SagaStatus.Running, SagaStatus.Paused, SagaStatus.Errored], createdAfter: 1_010, createdBefore: 1_060 },
        { sagaName: 'order', createdBefore: 1_040 },
      ];
      let nonEmpty = 0;
      for (const filter of filters) {
        const want = expectedIds(records.values(), filter);
        if (want.length) nonEmpty++;
        expect({ filter, ids: (await repo.list({ ...filter, limit: 1_000 })).items.map((s) => s.uuid) }).toEqual({ filter, ids: want });
        // The same through pages.
        expect({ filter, ids: (await listAll(repo, { ...filter, limit: 3 })).ids }).toEqual({ filter, ids: want });
      }
      expect(nonEmpty).toBeGreaterThanOrEqual(filters.length - 3);
    });

    it('returns summaries: the summary fields of the record, with deadline = timer.at', async () => {
      await repo.store(waiting('w', 1, { createdAt: 2_000, sagaName: 'refund', definitionHash: 'h9' }), null);
      await repo.store(record('plain', { createdAt: 1_500 }), null);
      const { items } = await repo.list();
      expect(items).toEqual([
        { uuid: 'w', sagaName: 'refund', definitionHash: 'h9', version: 1, status: SagaStatus.Paused, createdAt: 2_000, updatedAt: 1_001, deadline: 50_001 },
        { uuid: 'plain', sagaName: 'order', definitionHash: 'h1', version: 1, status: SagaStatus.Paused, createdAt: 1_500, updatedAt: 1_000, deadline: null },
      ]);
      await repo.store(waiting('w', 2, { createdAt: 2_000, sagaName: 'refund', definitionHash: 'h9', timer: null, status: SagaStatus.Running }), 1);
      await repo.store(waiting('plain', 2, { createdAt: 1_500 }), 1);
      const after = await repo.list();
      expect(after.items.map((s) => [s.uuid, s.version, s.status, s.updatedAt, s.deadline])).toEqual([
        ['w', 2, SagaStatus.Running, 1_002, null],
        ['plain', 2, SagaStatus.Paused, 1_002, 50_002],
      ]);
    });

    it('moves a record between status filters when its status changes, and keeps it under its saga name', async () => {
      await repo.store(record('a', { status: SagaStatus.Created }), null);
      await repo.store(record('b', { status: SagaStatus.Paused, createdAt: 900 }), null);
      const ids = async (filter: SagaListFilter) => (await repo.list(filter)).items.map((s) => s.uuid);
      const path = [SagaStatus.Running, SagaStatus.Paused, SagaStatus.Paused, SagaStatus.Running, SagaStatus.Errored, SagaStatus.Running, SagaStatus.Finished];
      for (const [i, status] of path.entries()) {
        await repo.store(record('a', { version: i + 2, status, updatedAt: 2_000 + i }), i + 1);
        for (const s of STATUSES) {
          const want = [...(s === status ? ['a'] : []), ...(s === SagaStatus.Paused ? ['b'] : [])];
          expect({ step: i, status: s, ids: await ids({ status: s }) }).toEqual({ step: i, status: s, ids: want });
        }
        expect(await ids({ sagaName: 'order' })).toEqual(['a', 'b']);
        expect(await ids({})).toEqual(['a', 'b']);
      }
    });

    it('pages exactly with the cursor, for page sizes from 1 to past the end: each record once, in order', async () => {
      const records = await dataset();
      const want = expectedIds(records.values(), {});
      for (const limit of [1, 2, 7, 13, 39, 40, 41, 100]) {
        const { ids, pages } = await listAll(repo, { limit });
        expect({ limit, ids }).toEqual({ limit, ids: want });
        expect({ limit, pages }).toEqual({ limit, pages: Math.max(1, Math.ceil(40 / limit)) });
      }
      const first = await repo.list();
      expect(first.items).toHaveLength(40); // default limit 100
      expect(first.cursor).toBeNull();
      const paused = expectedIds(records.values(), { status: SagaStatus.Paused });
      expect((await listAll(repo, { status: SagaStatus.Paused, limit: 2 })).ids).toEqual(paused);
    });

    it('stays exact when records are created between pages, and when the record named by the cursor is deleted', async () => {
      const records = await dataset();
      const page1 = await repo.list({ limit: 10 });
      expect(page1.items.map((s) => s.uuid)).toEqual(expectedIds(records.values(), {}).slice(0, 10));
      const last = page1.items.at(-1)!;
      // Created now: one newer than everything and one tied with the cursor's item but ordered
      // before it (both above the cursor: not in later pages), one tied but ordered after it, one
      // in the middle, one older than all (below the cursor: in later pages).
      const added = [
        record('zz-newest', { createdAt: 9_999 }),
        record(`${last.uuid}z`, { createdAt: last.createdAt }),
        record('r-', { createdAt: last.createdAt }),
        record('mid', { createdAt: 1_035 }),
        record('aa-oldest', { createdAt: 1 }),
      ];
      for (const r of added) {
        records.set(r.uuid, r);
        await repo.store(r, null);
      }
      // The cursor's own record goes away: paging goes on right after where it was.
      expect(await repo.delete(last.uuid)).toBe(true);
      records.delete(last.uuid);
      const rest: string[] = [];
      let cursor = page1.cursor;
      let pages = 0;
      while (cursor && pages++ < 100) {
        const page = await repo.list({ limit: 6, cursor });
        rest.push(...page.items.map((s) => s.uuid));
        cursor = page.cursor;
        // Deleting the record a cursor names must not matter on any page.
        if (cursor && pages === 2) {
          const named = page.items.at(-1)!.uuid;
          expect(await repo.delete(named)).toBe(true);
          records.delete(named);
        }
      }
      const after = (r: { createdAt: number; uuid: string }) => r.createdAt < last.createdAt || (r.createdAt === last.createdAt && r.uuid < last.uuid);
      const stillThere = new Set(records.keys());
      const want = expectedIds([...records.values()].filter(after), {});
      // The record deleted at page 2 had been returned already; everything else after the first cursor, once each.
      expect(rest.filter((u) => stillThere.has(u))).toEqual(want);
      expect(new Set(rest).size).toBe(rest.length);
      expect(rest).not.toContain('zz-newest');
      expect(rest).not.toContain(`${last.uuid}z`);
      expect(rest).toContain('r-');
      expect(rest).toContain('mid');
      expect(rest.at(-1)).toBe('aa-oldest');
      expect(rest.some((u) => page1.items.some((s) => s.uuid === u))).toBe(false);
    });

    it('refuses a cursor it did not make and a limit below 1 (RangeError)', async () => {
      await repo.store(record('a'), null);
      await expect(repo.list({ cursor: 'garbage' })).rejects.toThrow(RangeError);
      await expect(repo.list({ limit: 0 })).rejects.toThrow(RangeError);
      await expect(repo.list({ limit: 1.5 })).rejects.toThrow(/limit/);
    });
  });

  it('summaries listed match the records loaded', async () => {
    const stored: SagaRecord[] = [];
    for (let i = 0; i < 12; i++) {
      const r = waiting(`s-${i}`, 1, { createdAt: 3_000 - i, status: STATUS_CYCLE[i % STATUS_CYCLE.length]! });
      stored.push(r);
      await repo.store(r, null);
    }
    const { items } = await repo.list({ limit: 100 });
    const loaded = await repo.loadMany(items.map((s) => s.uuid));
    expect(items).toHaveLength(12);
    items.forEach((s: SagaRecordSummary, i) => {
      const r = loaded[i]!;
      expect(s).toEqual({ uuid: r.uuid, sagaName: r.sagaName, definitionHash: r.definitionHash, version: r.version, status: r.status, createdAt: r.createdAt, updatedAt: r.updatedAt, deadline: r.timer?.at ?? null });
    });
  });
});
