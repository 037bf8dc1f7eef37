import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSagaRepository,
  InProcessBroker,
  ManualClock,
  RECORD_FORMAT,
  Saga,
  SagaManager,
  SagaRequest,
  SagaSnapshotError,
  SagaStatus,
  SagaVersionConflictError,
  type FileSagaRepositoryOptions,
  type SagaListFilter,
  type SagaRecord,
  type SagaRecordSummary,
} from '../../src/index.js';
import { collectingLogger, settle, until } from '../support/harness.js';
import { RecordingInProcessBroker } from '../support/recording-in-process-broker.js';

let dir: string;
const opened: FileSagaRepository[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sagachart-file-repo-'));
});

afterEach(async () => {
  for (const repo of opened.splice(0)) await repo.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<FileSagaRepositoryOptions> = {}): Promise<FileSagaRepository> {
  const repo = await FileSagaRepository.open({ dir, logger: collectingLogger(), ...options });
  opened.push(repo);
  return repo;
}

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
    snapshot: { value: 'waiting', context: { uuid } },
    outbox: [],
    timer: null,
    ...fields,
  };
}

const fileOf = (uuid: string) => join(dir, 'executions', `${uuid}.json`);

/** Every page of a listing, following cursors. */
async function listAll(repo: FileSagaRepository, filter: SagaListFilter): Promise<{ items: SagaRecordSummary[]; pages: number }> {
  const items: SagaRecordSummary[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await repo.list({ ...filter, cursor });
    items.push(...page.items);
    cursor = page.cursor;
    pages++;
  } while (cursor && pages < 1_000);
  return { items, pages };
}

describe('FileSagaRepository compare-and-set', () => {
  it('creates, updates and refuses a store over the wrong version', async () => {
    const repo = await open();
    await repo.store(record('a'), null);
    await repo.store(record('a', { version: 2, status: SagaStatus.Finished, updatedAt: 2_000 }), 1);
    expect(await repo.load('a')).toMatchObject({ uuid: 'a', version: 2, status: SagaStatus.Finished, updatedAt: 2_000 });
    expect(JSON.parse(await readFile(fileOf('a'), 'utf8'))).toMatchObject({ version: 2 });

    const stale = await repo.store(record('a', { version: 2 }), 1).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(SagaVersionConflictError);
    expect(stale).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', uuid: 'a', expected: 1, actual: 2 });
    const again = await repo.store(record('a'), null).catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', expected: 0, actual: 2 });
    const missing = await repo.store(record('b', { version: 4 }), 3).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'SAGA_VERSION_CONFLICT', uuid: 'b', expected: 3, actual: null });
    await expect(repo.store(record('a', { version: 5 }), 2)).rejects.toThrow(RangeError);
    expect((await repo.load('a'))?.version).toBe(2);
    expect(await repo.load('b')).toBeNull();
  });

  it('lets exactly one of two concurrent stores over the same version win', async () => {
    const repo = await open();
    await repo.store(record('a'), null);
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.allSettled([
        repo.store(record('a', { version: round + 1, snapshot: { by: 'x' } }), round),
        repo.store(record('a', { version: round + 1, snapshot: { by: 'y' } }), round),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]?.reason).toBeInstanceOf(SagaVersionConflictError);
      expect(lost[0]?.reason).toMatchObject({ expected: round, actual: round + 1 });
      const stored = await repo.load('a');
      expect(stored?.version).toBe(round + 1);
      expect(stored?.snapshot).toEqual({ by: results[0]?.status === 'fulfilled' ? 'x' : 'y' });
    }
    // Two concurrent creates of one id: one wins too.
    const creates = await Promise.allSettled([repo.store(record('c'), null), repo.store(record('c'), null)]);
    expect(creates.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('refuses execution ids that are not safe file names, naming the value', async () => {
    const repo = await open();
    for (const bad of ['../evil', 'a/b', 'a\\b', '..', '.hidden', 'x..y', '', 'a b']) {
      await expect(repo.store(record(bad), null)).rejects.toThrow(RangeError);
      await expect(repo.load(bad)).rejects.toThrow(RangeError);
      await expect(repo.delete(bad)).rejects.toThrow(RangeError);
    }
    await expect(repo.load('../evil')).rejects.toThrow('"../evil"');
    expect(await readdir(join(dir, 'executions'))).toEqual([]);
  });
});

describe('FileSagaRepository load and delete', () => {
  it('loads null for a missing id and throws SagaSnapshotError for a broken or unknown-format file', async () => {
    const repo = await open();
    expect(await repo.load('nope')).toBeNull();
    await repo.store(record('broken'), null);
    await writeFile(fileOf('broken'), '{"format":1,"uuid":"bro');
    const broken = await repo.load('broken').catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(SagaSnapshotError);
    expect(broken).toMatchObject({ code: 'SAGA_SNAPSHOT_INVALID', uuid: 'broken' });
    expect((broken as Error).message).toContain('not JSON');

    await repo.store(record('future'), null);
    await writeFile(fileOf('future'), JSON.stringify({ ...record('future'), format: 99 }));
    await expect(repo.load('future')).rejects.toThrow(/unknown record format 99/);

    await repo.store(record('moved'), null);
    await writeFile(fileOf('moved'), JSON.stringify(record('other')));
    await expect(repo.load('moved')).rejects.toBeInstanceOf(SagaSnapshotError);
  });

  it('deletes an execution and says whether it existed', async () => {
    const repo = await open();
    await repo.store(record('a'), null);
    await repo.store(record('b'), null);
    expect(await repo.delete('a')).toBe(true);
    expect(await repo.delete('a')).toBe(false);
    expect(await repo.load('a')).toBeNull();
    expect((await repo.list()).items.map((s) => s.uuid)).toEqual(['b']);
    expect(await readdir(join(dir, 'executions'))).toEqual(['b.json']);
    // A deleted id can be created again.
    await repo.store(record('a'), null);
    expect((await repo.load('a'))?.version).toBe(1);
  });
});

describe('FileSagaRepository list', () => {
  it('filters by status (one or several), saga name and creation time', async () => {
    const repo = await open();
    const rows: Array<[string, SagaStatus, string, number]> = [
      ['a', SagaStatus.Running, 'order', 100],
      ['b', SagaStatus.Paused, 'order', 200],
      ['c', SagaStatus.Finished, 'refund', 300],
      ['d', SagaStatus.Errored, 'order', 400],
      ['e', SagaStatus.Paused, 'refund', 500],
    ];
    for (const [uuid, status, sagaName, createdAt] of rows) await repo.store(record(uuid, { status, sagaName, createdAt }), null);
    const ids = async (filter: SagaListFilter) => (await repo.list(filter)).items.map((s) => s.uuid);
    expect(await ids({})).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(await ids({ status: SagaStatus.Paused })).toEqual(['e', 'b']);
    expect(await ids({ status: [SagaStatus.Running, SagaStatus.Paused] })).toEqual(['e', 'b', 'a']);
    expect(await ids({ sagaName: 'refund' })).toEqual(['e', 'c']);
    expect(await ids({ createdAfter: 200, createdBefore: 400 })).toEqual(['c', 'b']);
    expect(await ids({ status: SagaStatus.Paused, sagaName: 'order', createdAfter: 150 })).toEqual(['b']);
    expect(await ids({ status: [] })).toEqual([]);
    const [first] = (await repo.list({ sagaName: 'refund', limit: 1 })).items;
    expect(first).toEqual({ uuid: 'e', sagaName: 'refund', definitionHash: 'h1', version: 1, status: SagaStatus.Paused, createdAt: 500, updatedAt: 1_000, deadline: null });
    // Updates move the index along.
    await repo.store(record('a', { version: 2, status: SagaStatus.Finished, createdAt: 100 }), 1);
    expect(await ids({ status: SagaStatus.Finished })).toEqual(['c', 'a']);
  });

  it('pages 250 records sharing a few createdAt values exactly: each once, in order, with the default limit 100', async () => {
    const repo = await open();
    const all: SagaRecord[] = [];
    for (let i = 0; i < 250; i++) {
      const uuid = `r-${String((i * 7919) % 1000).padStart(4, '0')}`; // not in creation order
      all.push(record(uuid, { createdAt: 1_000 + (i % 4) * 10, status: i % 3 ? SagaStatus.Paused : SagaStatus.Running }));
    }
    await Promise.all(all.map((r) => repo.store(r, null)));
    const expected = [...all].sort((a, b) => b.createdAt - a.createdAt || (a.uuid < b.uuid ? 1 : -1)).map((r) => r.uuid);

    const first = await repo.list();
    expect(first.items).toHaveLength(100);
    expect(first.cursor).not.toBeNull();
    const byDefault = await listAll(repo, {});
    expect(byDefault.pages).toBe(3);
    expect(byDefault.items.map((s) => s.uuid)).toEqual(expected);

    for (const limit of [1, 7, 62, 249, 250, 251]) {
      const paged = await listAll(repo, { limit });
      expect(paged.items.map((s) => s.uuid)).toEqual(expected);
      expect(paged.pages).toBe(Math.max(1, Math.ceil(250 / limit)));
    }
    const running = await listAll(repo, { status: SagaStatus.Running, limit: 9 });
    expect(running.items.map((s) => s.uuid)).toEqual(expected.filter((u) => all.find((r) => r.uuid === u)?.status === SagaStatus.Running));

    // The cursor names the last item, so deleting items already seen shifts nothing.
    const page1 = await repo.list({ limit: 50 });
    for (const s of page1.items.slice(0, 20)) await repo.delete(s.uuid);
    const page2 = await repo.list({ limit: 50, cursor: page1.cursor });
    expect(page2.items.map((s) => s.uuid)).toEqual(expected.slice(50, 100));

    await expect(repo.list({ cursor: 'garbage' })).rejects.toThrow(RangeError);
    await expect(repo.list({ limit: 0 })).rejects.toThrow(RangeError);
  });
});

describe('FileSagaRepository on disk', () => {
  it('sees everything after close and reopen, and skips a broken file with a warning', async () => {
    const repo = await open();
    for (let i = 0; i < 20; i++) await repo.store(record(`x-${i}`, { createdAt: i }), null);
    await repo.store(record('x-3', { version: 2, status: SagaStatus.Finished, createdAt: 3 }), 1);
    await repo.delete('x-7');
    await repo.close();
    await expect(repo.load('x-1')).rejects.toThrow(/closed/);
    await writeFile(fileOf('torn'), '{"format":1,"uu');

    const logger = collectingLogger();
    const again = await open({ logger });
    const { items } = await listAll(again, { limit: 6 });
    expect(items.map((s) => s.uuid)).toEqual(
      Array.from({ length: 20 }, (_, i) => `x-${19 - i}`).filter((u) => u !== 'x-7'),
    );
    expect(items.find((s) => s.uuid === 'x-3')).toMatchObject({ version: 2, status: SagaStatus.Finished });
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ file: fileOf('torn') }) }));
    await expect(again.load('torn')).rejects.toBeInstanceOf(SagaSnapshotError);
    // A broken file is kept for a human to look at, not overwritten; deleting it frees the id.
    await expect(again.store(record('torn'), null)).rejects.toBeInstanceOf(SagaSnapshotError);
    expect(await again.delete('torn')).toBe(true);
    await again.store(record('torn'), null);
    expect((await again.load('torn'))?.version).toBe(1);
  });

  it('removes temp files left by an interrupted write at open', async () => {
    const repo = await open();
    await repo.store(record('a'), null);
    await repo.close();
    await writeFile(join(dir, 'executions', 'a.json.999999.0123456789ab.tmp'), '{"format":1,"uuid":"a","vers');
    await writeFile(join(dir, 'executions', 'b.json.999999.0123456789ab.tmp'), '');
    await writeFile(join(dir, 'LOCK.999999.0123456789ab.tmp'), '999999\n');
    const again = await open();
    expect((await readdir(join(dir, 'executions'))).sort()).toEqual(['a.json']);
    expect((await readdir(dir)).sort()).toEqual(['LOCK', 'executions']);
    expect((await again.list()).items.map((s) => s.uuid)).toEqual(['a']);
    expect((await again.load('a'))?.version).toBe(1);
  });
});

describe('FileSagaRepository retention', () => {
  it('sweep() deletes only finished and errored executions older than retentionMs', async () => {
    const clock = new ManualClock(1_000_000);
    const repo = await open({ clock, retentionMs: 10_000 });
    const old = 1_000_000 - 10_001;
    await repo.store(record('old-finished', { status: SagaStatus.Finished, updatedAt: old }), null);
    await repo.store(record('old-errored', { status: SagaStatus.Errored, updatedAt: old }), null);
    await repo.store(record('old-paused', { status: SagaStatus.Paused, updatedAt: old }), null);
    await repo.store(record('old-running', { status: SagaStatus.Running, updatedAt: old }), null);
    await repo.store(record('new-finished', { status: SagaStatus.Finished, updatedAt: 1_000_000 - 5_000 }), null);
    expect(await repo.sweep()).toBe(2);
    const left = (await repo.list()).items.map((s) => s.uuid).sort();
    expect(left).toEqual(['new-finished', 'old-paused', 'old-running']);
    expect((await readdir(join(dir, 'executions'))).sort()).toEqual(['new-finished.json', 'old-paused.json', 'old-running.json']);
    expect(await repo.sweep()).toBe(0);
    clock.advance(6_000);
    expect(await repo.sweep()).toBe(1);
    expect(await repo.load('new-finished')).toBeNull();
  });

  it('sweeps on its own every sweepIntervalMs of the injected clock, and not at all without retentionMs', async () => {
    const clock = new ManualClock(1_000_000);
    const repo = await open({ clock, retentionMs: 1_000, sweepIntervalMs: 5_000 });
    await repo.store(record('done', { status: SagaStatus.Finished, updatedAt: 1_000_000 }), null);
    clock.advance(4_999);
    expect((await repo.list()).items).toHaveLength(1);
    clock.advance(1);
    await until(async () => (await repo.list()).items.length === 0, 'the timed sweep deleted the record');
    await repo.store(record('done2', { status: SagaStatus.Errored, updatedAt: clock.now() }), null);
    clock.advance(5_000); // the next sweep was armed after the first finished
    await until(async () => (await repo.list()).items.length === 0, 'the second timed sweep deleted the record');
    await repo.close();
    expect(clock.pending).toBe(0);

    const plainClock = new ManualClock(0);
    const plain = await open({ clock: plainClock });
    await plain.store(record('kept', { status: SagaStatus.Finished, updatedAt: 0 }), null);
    // Only the lock's heartbeat is armed: a week of time sweeps nothing.
    expect(plainClock.pending).toBe(1);
    for (let day = 0; day < 7; day++) {
      plainClock.advance(86_400_000);
      await settle();
    }
    expect(await plain.sweep()).toBe(0);
    expect(await plain.load('kept')).not.toBeNull();
  });

  it('rejects bad options naming the field', async () => {
    await expect(FileSagaRepository.open({ dir, retentionMs: -1 })).rejects.toThrow(/retentionMs/);
    await expect(FileSagaRepository.open({ dir, sweepIntervalMs: 0 })).rejects.toThrow(/sweepIntervalMs/);
    await expect(FileSagaRepository.open({ dir: '' })).rejects.toThrow(/dir/);
  });
});

describe('FileSagaRepository under a SagaManager', () => {
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
    .remoteStep('charge')
    .onExecute(() => new SagaRequest('payment.charge', {}))
    .commit();

  it('pauses a saga on disk, and a second manager on the reopened directory recovers it to finished', async () => {
    const repository = await open();
    // No participant registered: the request is held, so the saga stays paused.
    const a = new SagaManager({ repository, broker: new InProcessBroker(), sagas: [ORDER], logger: collectingLogger() });
    const paused = await a.run(ORDER, { context: { qty: 2 }, pauseOnDisk: true });
    expect(paused.status).toBe(SagaStatus.Paused);
    expect(a.liveCount).toBe(0);
    await a.close();
    await repository.close();
    const onDisk = JSON.parse(await readFile(fileOf(paused.uuid), 'utf8')) as SagaRecord;
    expect(onDisk).toMatchObject({ status: SagaStatus.Paused, sagaName: 'order' });
    expect(onDisk.outbox.map((r) => r.target)).toEqual(['inventory.reserve']);

    const reopened = await open();
    const broker = new RecordingInProcessBroker();
    broker.participant('inventory', { 'inventory.reserve': () => ({ id: 'r-7' }) });
    broker.participant('payment', { 'payment.charge': () => ({}) });
    const b = new SagaManager({ repository: reopened, broker, sagas: [ORDER], logger: collectingLogger() });
    const report = await b.recover();
    expect(report).toMatchObject({ recovered: 1, resent: 1, failed: [] });
    const done = await b.waitFor(paused.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.get('reservation')).toBe('r-7');
    expect(broker.sent.map((r) => `${r.phase} ${r.target}`)).toEqual(['execute inventory.reserve', 'execute payment.charge', 'reserve inventory', 'reserve payment', 'commit inventory', 'commit payment']);
    await b.close();
    const stored = await reopened.load(paused.uuid);
    expect(stored).toMatchObject({ status: SagaStatus.Finished });
    expect(stored?.version).toBeGreaterThan(onDisk.version);
    expect((await reopened.list({ status: SagaStatus.Finished })).items.map((s) => s.uuid)).toEqual([paused.uuid]);
  });
});
