import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileSagaRepository,
  ManualClock,
  RECORD_FORMAT,
  SagaRepositoryLockedError,
  SagaStatus,
  type FileSagaRepositoryOptions,
  type SagaRecord,
} from '../../src/index.js';
import { SagaRepositoryLockLostError } from '../../src/errors/saga-repository-lock-lost-error.js';
import { collectingLogger, settle, until } from '../support/harness.js';

const REFRESH = 1_000;
const STALE = 5_000;
const T0 = Date.UTC(2026, 0, 1);

let dir: string;
let lockPath: string;
const opened: FileSagaRepository[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sagachart-lock-'));
  lockPath = join(dir, 'LOCK');
});

afterEach(async () => {
  for (const repo of opened.splice(0)) await repo.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<FileSagaRepositoryOptions> = {}): Promise<FileSagaRepository> {
  const repo = await FileSagaRepository.open({ dir, logger: collectingLogger(), lockRefreshMs: REFRESH, lockStaleMs: STALE, ...options });
  opened.push(repo);
  return repo;
}

function record(uuid: string, version = 1, by = 'us'): SagaRecord {
  return {
    format: RECORD_FORMAT,
    uuid,
    sagaName: 'order',
    definitionHash: 'h1',
    version,
    status: SagaStatus.Paused,
    createdAt: 1_000,
    updatedAt: 1_000,
    snapshot: { by },
    outbox: [],
    timer: null,
  };
}

interface LockFile {
  token: string;
  pid: number;
  host: string;
  machine: string | null;
}

const readLock = async () => JSON.parse(await readFile(lockPath, 'utf8')) as LockFile;
const mtimeOf = async (path = lockPath) => (await stat(path)).mtimeMs;

/** Puts a LOCK in place as its owner would (all at once), refreshed at `refreshedAt`. */
async function writeLock(content: string | Partial<LockFile>, refreshedAt: number): Promise<string> {
  const text = typeof content === 'string' ? content : `${JSON.stringify({ token: 'f'.repeat(32), pid: 1, host: 'other-host', machine: 'other-boot/pid:[4026531836]', ...content })}\n`;
  const temp = join(dir, 'incoming-lock');
  await writeFile(temp, text);
  await utimes(temp, new Date(refreshedAt), new Date(refreshedAt));
  await rename(temp, lockPath);
  return text;
}

/** The pid of a process that has exited: it means nothing on this machine any more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  expect(child.pid).toBeTypeOf('number');
  return child.pid!;
}

/** The machine identity this process writes into its LOCK. */
async function ourMachine(): Promise<string | null> {
  const repo = await FileSagaRepository.open({ dir, logger: {} });
  const { machine } = await readLock();
  await repo.close();
  return machine;
}

describe('FileSagaRepository LOCK', () => {
  it('owns its directory: a second open fails with SAGA_REPOSITORY_LOCKED until the first closes', async () => {
    const repo = await open();
    const lock = await readLock();
    expect(lock).toMatchObject({ pid: process.pid, host: hostname(), token: expect.stringMatching(/^[0-9a-f]{32}$/) });
    const err = await FileSagaRepository.open({ dir, logger: collectingLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SagaRepositoryLockedError);
    expect(err).toMatchObject({ code: 'SAGA_REPOSITORY_LOCKED', pid: process.pid });
    expect((err as Error).message).toContain(dir);
    // Two opens racing in one process: exactly one gets it, with a token of its own.
    await repo.close();
    const race = await Promise.allSettled([open(), open()]);
    expect(race.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((await readLock()).token).not.toBe(lock.token);
    for (const r of opened.splice(0)) await r.close();
    await expect(readFile(lockPath, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['pid 1 on another host', async () => ({ pid: 1 })],
    ['a pid that is dead here, on another host', async () => ({ pid: await deadPid() })],
    ['a pid that is dead here, in another pid namespace of this host', async () => ({ pid: await deadPid(), host: hostname(), machine: `${(await ourMachine())?.split('/')[0]}/pid:[1]` })],
    ['a bare pid that is dead here (an older sagachart, in another container)', async () => `${await deadPid()}\n`],
  ])('keeps a second open out while a LOCK naming %s is refreshed, and takes it over once stale', async (_what, make) => {
    const clock = new ManualClock(T0);
    const text = await writeLock(await make(), T0);
    const holderPid = Number(/\d+/.exec(text.includes('"pid"') ? /"pid":(\d+)/.exec(text)![1]! : text)![0]);
    const refused = await open({ clock }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SagaRepositoryLockedError);
    expect(refused).toMatchObject({ code: 'SAGA_REPOSITORY_LOCKED', pid: holderPid });
    expect(await readFile(lockPath, 'utf8')).toBe(text);

    // Its owner keeps refreshing it: still refused, however long that goes on.
    clock.advance(4 * STALE);
    await utimes(lockPath, new Date(clock.now() - STALE + 1), new Date(clock.now() - STALE + 1));
    await expect(open({ clock })).rejects.toBeInstanceOf(SagaRepositoryLockedError);
    expect(await readFile(lockPath, 'utf8')).toBe(text);

    // It stops: once not refreshed for lockStaleMs the LOCK is taken over.
    clock.advance(2);
    const logger = collectingLogger();
    const repo = await open({ clock, logger });
    expect((await readLock()).pid).toBe(process.pid);
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ dir, pid: holderPid, reason: expect.stringContaining('not refreshed for') }) }),
    );
    await repo.store(record('a'), null);
    expect((await repo.load('a'))?.version).toBe(1);
  });

  it('takes over at once the LOCK of a process gone from this machine and pid namespace (a restart after kill -9)', async () => {
    const clock = new ManualClock(T0);
    const machine = await ourMachine();
    // Where /proc cannot tell the namespace, only the heartbeat decides (covered above).
    if (machine === null) return;
    const pid = await deadPid();
    await writeLock({ pid, host: hostname(), machine }, T0);
    const logger = collectingLogger();
    const repo = await open({ clock, logger });
    expect((await readLock()).pid).toBe(process.pid);
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ pid, reason: expect.stringContaining('gone') }) }));
    await repo.close();

    // A live process of this machine is refused while its LOCK is fresh (this test's parent lives as long as we run).
    const text = await writeLock({ pid: process.ppid, host: hostname(), machine }, T0);
    await expect(open({ clock })).rejects.toMatchObject({ code: 'SAGA_REPOSITORY_LOCKED', pid: process.ppid });
    expect(await readFile(lockPath, 'utf8')).toBe(text);
    // … and taken over once stale: the pid may have been reused, or its owner stalled (it finds out).
    clock.advance(STALE + 1);
    await open({ clock });
    expect((await readLock()).pid).toBe(process.pid);
  });

  it('refuses a bare pid of an older sagachart that is alive here, however old the LOCK (that version never refreshes)', async () => {
    const clock = new ManualClock(T0);
    await writeLock(`${process.ppid}\n`, T0 - 100 * STALE);
    await expect(open({ clock })).rejects.toMatchObject({ code: 'SAGA_REPOSITORY_LOCKED', pid: process.ppid });
    expect((await readFile(lockPath, 'utf8')).trim()).toBe(String(process.ppid));
  });

  it('refreshes its LOCK every lockRefreshMs of the injected clock', async () => {
    const clock = new ManualClock(T0);
    const logger = collectingLogger();
    const repo = await open({ clock, logger });
    expect(Math.abs((await mtimeOf()) - T0)).toBeLessThan(1);
    for (let i = 1; i <= 6; i++) {
      clock.advance(REFRESH);
      const due = clock.now();
      await until(async () => Math.abs((await mtimeOf()) - due) < 1, `refresh ${i} set the LOCK's mtime to the clock's time`);
    }
    expect(logger.lines.filter((l) => l.level !== 'debug' && l.level !== 'info')).toEqual([]);
    await repo.store(record('a'), null);

    // A process that stalled past lockStaleMs (and was not taken over) says so and carries on.
    await utimes(lockPath, new Date(clock.now() - 2 * STALE), new Date(clock.now() - 2 * STALE));
    clock.advance(REFRESH);
    await until(() => logger.lines.some((l) => l.level === 'warn' && l.message.includes('unrefreshed')), 'the late refresh is reported');
    await until(async () => Math.abs((await mtimeOf()) - clock.now()) < 1, 'the LOCK is refreshed again');
    await repo.store(record('a', 2), 1);
    await repo.close();
    expect(clock.pending).toBe(0);
  });

  it('an owner whose LOCK was taken over finds out: its writes fail and it never touches the new owner\'s files', async () => {
    const clock = new ManualClock(T0);
    const logger = collectingLogger();
    const repo = await open({ clock, logger });
    await repo.store(record('a'), null);
    await repo.store(record('b'), null);

    // Another host decided the LOCK was stale (this process stalled) and took the directory over.
    const theirs = await writeLock({ token: 'e'.repeat(32), pid: 1, host: 'new-owner' }, T0);
    const theirA = JSON.stringify(record('a', 2, 'them'));
    await writeFile(join(dir, 'executions', 'a.json'), theirA);

    const err = await repo.store(record('a', 2), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SagaRepositoryLockLostError);
    expect(err).toMatchObject({ code: 'SAGA_REPOSITORY_LOCK_LOST', dir, holder: { pid: 1, host: 'new-owner' } });
    expect((err as Error).message).toContain('new-owner');
    await expect(repo.store(record('c'), null)).rejects.toMatchObject({ code: 'SAGA_REPOSITORY_LOCK_LOST' });
    await expect(repo.delete('b')).rejects.toMatchObject({ code: 'SAGA_REPOSITORY_LOCK_LOST' });
    expect(await readFile(join(dir, 'executions', 'a.json'), 'utf8')).toBe(theirA);
    expect(JSON.parse(await readFile(join(dir, 'executions', 'b.json'), 'utf8'))).toMatchObject({ version: 1 });
    await expect(readFile(join(dir, 'executions', 'c.json'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);

    // Its heartbeat stopped: the new owner's LOCK keeps its own mtime, and close() leaves it in place.
    clock.advance(5 * REFRESH);
    await settle();
    expect(Math.abs((await mtimeOf()) - T0)).toBeLessThan(1);
    await repo.close();
    expect(await readFile(lockPath, 'utf8')).toBe(theirs);
  });

  it('notices a takeover at its next refresh, before any write', async () => {
    const clock = new ManualClock(T0);
    const logger = collectingLogger();
    const repo = await open({ clock, logger });
    const theirs = await writeLock({ token: 'e'.repeat(32), pid: 1, host: 'new-owner' }, T0 - 1);
    clock.advance(REFRESH);
    await until(() => logger.lines.some((l) => l.level === 'error'), 'the refresh found the LOCK taken over');
    expect(logger.lines.find((l) => l.level === 'error')?.message).toContain("no longer owns directory");
    expect(Math.abs((await mtimeOf()) - (T0 - 1))).toBeLessThan(1);
    expect(clock.pending).toBe(0);
    await expect(repo.store(record('a'), null)).rejects.toBeInstanceOf(SagaRepositoryLockLostError);
    await repo.close();
    expect(await readFile(lockPath, 'utf8')).toBe(theirs);
  });

  it('rejects lock options without a unit that makes sense, naming the field', async () => {
    await expect(FileSagaRepository.open({ dir, lockRefreshMs: 5 })).rejects.toThrow(/lockRefreshMs must be a number of ms >= 10, got 5/);
    await expect(FileSagaRepository.open({ dir, lockRefreshMs: Number.NaN })).rejects.toThrow(/lockRefreshMs/);
    await expect(FileSagaRepository.open({ dir, lockStaleMs: 3_000 })).rejects.toThrow(/lockStaleMs must be .* at least twice lockRefreshMs \(2000\).*got 3000/);
    await expect(FileSagaRepository.open({ dir, lockRefreshMs: 100, lockStaleMs: 199 })).rejects.toThrow(/lockStaleMs/);
    await expect(FileSagaRepository.open({ dir, lockStaleMs: Infinity })).rejects.toThrow(/lockStaleMs/);
    await expect(readFile(lockPath, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    const ok = await FileSagaRepository.open({ dir, lockRefreshMs: 100, lockStaleMs: 200, logger: {} });
    await ok.close();
  });
});
