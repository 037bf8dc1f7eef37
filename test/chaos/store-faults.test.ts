/**
 * Chaos: the repository fails a seeded share of its calls (1–5%) and adds latency to the others
 * (replay with CHAOS_SEED=<n>). Whatever fails, no request is sent before the snapshot that holds
 * it is stored, every saga that was stored ends as the model says once recovery has run, and no
 * step is applied or compensated twice.
 */
import { describe, expect, it } from 'vitest';
import {
  InMemorySagaRepository,
  InProcessBroker,
  SagaManager,
  SagaStatus,
  type OutgoingRequest,
  type ResponseListener,
  type SagaBroker,
  type SagaListFilter,
  type SagaRecord,
  type SagaRepository,
} from '../../src/index.js';
import { collectingLogger } from '../support/harness.js';
import { buildSaga, countingParticipant, definitions, mulberry32, runId, simulate, type Data, type Ledgers, type Rng } from '../support/saga-model.js';

const SEED = Number(process.env.CHAOS_SEED ?? 0x5f0a7);

/** A repository that fails some calls and delays the others, both seeded. */
class FaultyRepository implements SagaRepository {
  failures = 0;
  calls = 0;
  constructor(
    readonly inner: StoredOutboxes,
    readonly rng: Rng,
    readonly failRate: number,
  ) {}

  async #fault(what: string): Promise<void> {
    this.calls++;
    await new Promise((r) => setTimeout(r, this.rng.int(3)));
    if (this.rng.chance(this.failRate)) {
      this.failures++;
      throw Object.assign(new Error(`injected ${what} failure`), { code: 'INJECTED' });
    }
  }

  async store(record: SagaRecord, expected: number | null): Promise<void> {
    await this.#fault('store');
    return this.inner.store(record, expected);
  }
  async load(uuid: string): Promise<SagaRecord | null> {
    await this.#fault('load');
    return this.inner.load(uuid);
  }
  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    await this.#fault('loadMany');
    return this.inner.loadMany(uuids);
  }
  async delete(uuid: string): Promise<boolean> {
    return this.inner.delete(uuid);
  }
  async list(filter?: SagaListFilter) {
    await this.#fault('list');
    return this.inner.list(filter);
  }
  async close(): Promise<void> {}
}

/** The requests of every outbox the repository has stored. */
class StoredOutboxes extends InMemorySagaRepository {
  readonly requestIds = new Set<string>();
  override async store(record: SagaRecord, expected: number | null): Promise<void> {
    await super.store(record, expected);
    for (const r of record.outbox) this.requestIds.add(r.requestId);
  }
}

/** Checks, at every send, that a stored snapshot held the request in its outbox (a re-send may come from an earlier one). */
class OutboxCheckingBroker implements SagaBroker {
  readonly inner = new InProcessBroker();
  readonly violations: string[] = [];
  sent = 0;
  constructor(readonly stored: StoredOutboxes) {}
  attach(listener: ResponseListener): void {
    this.inner.attach(listener);
  }
  send(request: OutgoingRequest): void {
    this.sent++;
    if (!this.stored.requestIds.has(request.requestId)) this.violations.push(`${request.requestId} was sent before a snapshot holding it was stored`);
    this.inner.send(request);
  }
  async close(): Promise<void> {
    await this.inner.close();
  }
}

describe('chaos: a repository that fails and lags', () => {
  it(`nothing is sent unstored, nothing stored is lost, nothing is applied twice (seed ${SEED})`, async () => {
    console.info(`[store-faults] seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    const rng = mulberry32(SEED);
    const tally = { runs: 0, refused: 0, ended: 0, recoveries: 0, failures: 0, calls: 0 };
    const problems: string[] = [];
    for (const def of definitions.slice(0, 24)) {
      const ledgers: Ledgers = new Map();
      const saga = buildSaga(def.name, def.steps, ledgers);
      const stored = new StoredOutboxes();
      const repository = new FaultyRepository(stored, rng, 0.01 + rng.next() * 0.04);
      const broker = new OutboxCheckingBroker(stored);
      const applied = new Map<string, number>();
      broker.inner.participant('svc', countingParticipant(ledgers, applied));
      const manager = new SagaManager({ broker, repository, sagas: [saga], logger: collectingLogger(), recoverIntervalMs: 0, pollIntervalMs: 20 });
      const plans = [null, ...simulate(def, null).failurePoints];
      const remotePaths = new Set<string>();
      const collect = (steps: typeof def.steps) => {
        for (const step of steps) {
          if (step.kind === 'remote') remotePaths.add(step.path);
          if (step.kind === 'conditional') for (const b of step.branches) collect(b.steps);
        }
      };
      collect(def.steps);
      const started = new Map<string, { run: string; plan: (typeof plans)[number] }>();
      await Promise.all(
        plans.map(async (plan, i) => {
          const run = runId(plan);
          ledgers.set(run, []);
          const uuid = `${def.name}-${i}`;
          const data: Data = { run, route: def.route, fail: plan };
          tally.runs++;
          try {
            await manager.run(saga, { uuid, context: data, raiseOnError: false, pauseOnDisk: true });
          } catch (err) {
            // A store that failed: the caller hears of it. If nothing was stored, the saga never began.
            void err;
          }
          started.set(uuid, { run, plan });
        }),
      );
      // Recovery picks up whatever a failed store or load left behind, until every stored saga has ended.
      for (let round = 0; round < 400; round++) {
        let open = 0;
        for (const uuid of started.keys()) {
          const record = await stored.load(uuid);
          if (record && record.status !== SagaStatus.Finished && record.status !== SagaStatus.Errored) open++;
        }
        if (!open) break;
        await manager.recover().catch(() => undefined);
        tally.recoveries++;
        await new Promise((r) => setTimeout(r, 5));
      }
      for (const [uuid, { run, plan }] of started) {
        const record = await stored.load(uuid);
        const ledger = ledgers.get(run) ?? [];
        if (!record) {
          // Never stored: its run() was told so. Only local steps can have run (a request is sent
          // only once the snapshot holding it is stored): no participant did anything for it.
          tally.refused++;
          if (ledger.some((e) => remotePaths.has(e.slice(e.indexOf(':') + 1)))) problems.push(`${uuid}: never stored, yet a participant acted: ${JSON.stringify(ledger)}`);
          continue;
        }
        const expected = simulate(def, plan);
        if (record.status !== expected.status) problems.push(`${uuid}: ${record.status}, expected ${expected.status}`);
        else tally.ended++;
        // A local handler may run again after a failed store (the execution goes back to its last
        // stored wait): local steps must be idempotent. A participant's compensation, deduplicated
        // on its requestId, is applied once.
        const undos = ledger.filter((e) => e.startsWith('undo:'));
        const remoteUndos = undos.filter((e) => remotePaths.has(e.slice(5)));
        if (new Set(remoteUndos).size !== remoteUndos.length) problems.push(`${uuid}: a participant compensated twice: ${JSON.stringify(ledger)}`);
        if (JSON.stringify([...new Set(undos)]) !== JSON.stringify(expected.undo)) problems.push(`${uuid}: compensations ${JSON.stringify(undos)}, expected ${JSON.stringify(expected.undo)}`);
      }
      await manager.close();
      await new Promise((r) => setTimeout(r, 5));
      problems.push(...broker.violations);
      for (const [requestId, times] of applied) if (times > 1) problems.push(`${requestId} reached the participant's handler ${times} times`);
      tally.failures += repository.failures;
      tally.calls += repository.calls;
    }
    console.info(`[store-faults] ${JSON.stringify(tally)}`);
    expect(problems).toEqual([]);
    expect(tally.failures).toBeGreaterThan(20);
    expect(tally.ended).toBeGreaterThan(tally.runs * 0.8);
  }, 120_000);
});
