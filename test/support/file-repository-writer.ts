/**
 * Child process of test/integration/file-repository-crash.test.ts: opens a FileSagaRepository on
 * `<dir>` and stores versions of `<count>` executions (`exec-0`, `exec-1`, …) in a loop until it is
 * killed, each one carrying on from the version it finds on disk. It appends `ready` to `<acks>`
 * once open, then `ack <uuid> <version>` after each store has resolved. The acks go through
 * `fs.writeSync` to a file, so an ack written is an ack the parent reads, whenever the kill lands
 * (a pipe behind `process.stdout` is asynchronous on POSIX and could lose the last ones).
 *
 * Usage: node --import tsx test/support/file-repository-writer.ts <dir> <acks> [count]
 */
import { openSync, writeSync } from 'node:fs';
import { FileSagaRepository } from '../../src/repositories/file-saga-repository.js';
import { RECORD_FORMAT, type SagaRecord } from '../../src/repositories/saga-repository.js';
import { SagaStatus } from '../../src/status.js';

const [dir, acksPath, count = '3'] = process.argv.slice(2);
if (!dir || !acksPath) throw new Error('usage: file-repository-writer.ts <dir> <acks> [count]');
const acks = openSync(acksPath, 'a');

/** Big enough that a write takes a while, so that kills land mid-write. */
const PAD = 'x'.repeat(64 * 1024);

/** One version of an execution; the parent checks that the snapshot matches the version. */
function versionRecord(uuid: string, version: number): SagaRecord {
  return {
    format: RECORD_FORMAT,
    uuid,
    sagaName: 'crash',
    definitionHash: 'h',
    version,
    status: SagaStatus.Paused,
    createdAt: 1,
    updatedAt: version,
    snapshot: { version, pad: PAD, tail: `end-${version}` },
    outbox: [],
    timer: null,
  };
}

const repository = await FileSagaRepository.open({ dir, logger: {} });
writeSync(acks, 'ready\n');
await Promise.all(
  Array.from({ length: Number(count) }, async (_, i) => {
    const uuid = `exec-${i}`;
    let version = (await repository.load(uuid))?.version ?? 0;
    for (;;) {
      await repository.store(versionRecord(uuid, version + 1), version === 0 ? null : version);
      version++;
      writeSync(acks, `ack ${uuid} ${version}\n`);
    }
  }),
);
