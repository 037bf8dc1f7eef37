import type { Clock } from '../clock.js';
import { SagaError } from '../errors/saga-error.js';
import type { SagaLogger } from '../logger.js';
import type { SagaListPage, SagaRecord, SagaRepository } from '../repositories/saga-repository.js';
import { SagaStatus } from '../status.js';

/** What `recover()` did. */
export interface RecoveryReport {
  /** Executions picked up. */
  recovered: number;
  /** Requests sent again from outboxes. */
  resent: number;
  /** Executions restored to carry on (created or running when stored). */
  restarted: number;
  failed: Array<{ uuid: string; code: string; message: string }>;
}

/** Which stored executions `recover()` picks up. */
export interface RecoverOptions {
  /** Only those not stored for this long. @defaultValue every one */
  untouchedForMs?: number;
  /** Only those this says yes to (an orchestrator of a cluster picks up the executions it owns). */
  only?: (uuid: string) => boolean;
}

/** What recovery sees of the runtime. */
export interface RecoveryContext {
  repository: SagaRepository;
  clock: Clock;
  log: SagaLogger;
  /** In memory here, or an event for it is being handled: nothing to recover. */
  isLive(uuid: string): boolean;
  /** Resumes one stored execution in its mailbox: re-sends and re-arms a paused one, carries on a running one. */
  resume(record: SagaRecord): Promise<'resent' | 'restarted' | 'skipped'>;
}

const ACTIVE_STATUSES = [SagaStatus.Created, SagaStatus.Running, SagaStatus.Paused] as const;
/** Executions listed per page, and read from the repository per call. */
const PAGE = 500;
const BATCH = 250;

/**
 * Picks up every stored execution that is not done and not in memory here: pages through the
 * active ones, reads them in batches, and resumes each in its own mailbox. A paused execution is
 * not restored: its outbox is sent again (participants deduplicate on `requestId`) and its
 * deadline armed, from the record alone.
 */
export class Recovery {
  readonly #context: RecoveryContext;

  constructor(context: RecoveryContext) {
    this.#context = context;
  }

  async recover(options: RecoverOptions = {}): Promise<RecoveryReport> {
    const { repository, clock, log } = this.#context;
    const report: RecoveryReport = { recovered: 0, resent: 0, restarted: 0, failed: [] };
    const before = options.untouchedForMs === undefined ? Infinity : clock.now() - options.untouchedForMs;
    const fail = (uuid: string, err: unknown) => {
      const info = err instanceof SagaError ? err.toJSON() : { code: 'SAGA_RECOVERY_FAILED', message: err instanceof Error ? err.message : String(err) };
      report.failed.push({ uuid, ...info });
      log.error?.('could not recover execution', { uuid, ...info });
    };
    let cursor: string | null = null;
    do {
      const page: SagaListPage = await repository.list({ status: ACTIVE_STATUSES, cursor, limit: PAGE });
      cursor = page.cursor;
      const only = options.only;
      const todo = page.items.filter((item) => item.updatedAt <= before && !this.#context.isLive(item.uuid) && (!only || only(item.uuid))).map((item) => item.uuid);
      for (let i = 0; i < todo.length; i += BATCH) {
        const uuids = todo.slice(i, i + BATCH);
        let records: Array<SagaRecord | null>;
        try {
          records = await repository.loadMany(uuids);
        } catch {
          // One unreadable record must not hide the others: read them one by one.
          records = await Promise.all(uuids.map((uuid) => repository.load(uuid).catch((e: unknown) => (fail(uuid, e), null))));
        }
        await Promise.all(
          records.map(async (record) => {
            if (!record || record.status === SagaStatus.Finished || record.status === SagaStatus.Errored) return;
            try {
              const done = await this.#context.resume(record);
              if (done === 'skipped') return;
              report.recovered++;
              if (done === 'resent') report.resent += record.outbox.length;
              else report.restarted++;
            } catch (err) {
              fail(record.uuid, err);
            }
          }),
        );
      }
    } while (cursor);
    return report;
  }
}
