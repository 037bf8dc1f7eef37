import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FileSagaRepository, type SagaRecord } from '../../src/index.js';
import { collectingLogger, until } from '../support/harness.js';
import { ROOT } from '../support/run-script.js';

const WRITER = join(ROOT, 'test/support/file-repository-writer.ts');
const EXECUTIONS = 3;
const ROUNDS = 5;
/** Override to replay a failure: the seed is in the failure message. */
const SEED = Number(process.env.CRASH_SEED ?? 0x5a6a);

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The highest acknowledged version of each execution, from the writer's ack log. */
function parseAcks(text: string): Map<string, number> {
  const acked = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [word, uuid, version] = line.split(' ');
    if (word === 'ack' && uuid && version) acked.set(uuid, Math.max(acked.get(uuid) ?? 0, Number(version)));
  }
  return acked;
}

it('survives kill -9 at random moments: every file parses and holds a version the writer stored', async () => {
  const random = seeded(SEED);
  const base = await mkdtemp(join(tmpdir(), 'sagachart-crash-'));
  const dir = join(base, 'repo');
  const at = (round: number) => `seed ${SEED}, round ${round}`;
  let previous = new Map<string, number>();
  let tempFilesSeen = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const acksPath = join(base, `acks-${round}.log`);
      const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, acksPath, String(EXECUTIONS)], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      let gone = false;
      void exited.then(() => (gone = true));
      await until(async () => {
        if (gone) throw new Error(`the writer exited before it was killed (${at(round)}):\n${stderr}`);
        return (await readFile(acksPath, 'utf8').catch(() => '')).startsWith('ready');
      }, `the writer opened the repository (${at(round)})`, 15_000);

      // Kill at a random moment: right away (mid-load), or a little later (mid-write).
      await new Promise((r) => setTimeout(r, Math.floor(random() * 250)));
      const pid = child.pid;
      child.kill('SIGKILL');
      expect(await exited, at(round)).toBe('SIGKILL');

      const acked = parseAcks(await readFile(acksPath, 'utf8'));
      const files = await readdir(join(dir, 'executions'));
      tempFilesSeen += files.filter((n) => n.endsWith('.tmp')).length;
      for (const name of files.filter((n) => n.endsWith('.json'))) {
        // No torn, empty or half-written file, read raw before the repository sees it.
        const raw = await readFile(join(dir, 'executions', name), 'utf8');
        expect(() => JSON.parse(raw), `${name} (${at(round)})`).not.toThrow();
      }

      // The killed writer's LOCK is still there, fresh: on this machine and pid namespace its dead pid
      // frees it at once (elsewhere, only lockStaleMs without a refresh would).
      expect(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')), at(round)).toMatchObject({ pid, token: expect.any(String) });
      const logger = collectingLogger();
      const repo = await FileSagaRepository.open({ dir, logger });
      try {
        expect(logger.lines.filter((l) => l.level === 'warn' && l.message.includes('cannot be read')), at(round)).toEqual([]);
        expect(logger.lines, `the stale lock of the killed writer is taken over (${at(round)})`).toContainEqual(
          expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ pid, reason: expect.stringContaining('gone') }) }),
        );
        expect((await readdir(join(dir, 'executions'))).filter((n) => n.endsWith('.tmp')), at(round)).toEqual([]);
        const { items } = await repo.list({ limit: 1_000 });
        for (const { uuid } of items) {
          const record = (await repo.load(uuid)) as SagaRecord;
          const snapshot = record.snapshot as { version: number; pad: string; tail: string };
          // A version the writer stored: at least the last one acknowledged (it never goes back),
          // at most the one in flight when it died, and intact.
          const floor = Math.max(acked.get(uuid) ?? 0, previous.get(uuid) ?? 0);
          expect(record.version, `${uuid} (${at(round)})`).toBeGreaterThanOrEqual(Math.max(floor, 1));
          expect(record.version, `${uuid} (${at(round)})`).toBeLessThanOrEqual(floor + 1);
          expect(snapshot).toMatchObject({ version: record.version, tail: `end-${record.version}` });
          expect(snapshot.pad).toHaveLength(64 * 1024);
        }
        for (const uuid of acked.keys()) expect(items.map((s) => s.uuid), at(round)).toContain(uuid);
        previous = new Map(items.map((s) => [s.uuid, s.version]));
      } finally {
        await repo.close();
      }
    }
    // A run in which the writer never got anything stored must not pass.
    const total = [...previous.values()].reduce((a, b) => a + b, 0);
    expect(previous.size, `seed ${SEED}`).toBe(EXECUTIONS);
    expect(total, `seed ${SEED}`).toBeGreaterThan(ROUNDS * EXECUTIONS);
    console.info(`crash test: seed ${SEED}, ${ROUNDS} kills, ${total} versions stored, ${tempFilesSeen} temp files left by kills and removed`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}, 60_000);
