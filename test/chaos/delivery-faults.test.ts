/**
 * Chaos: every participant answer is delivered 1–3 times, shuffled and delayed (seeded; replay with
 * CHAOS_SEED=<n>). Every saga of the model-based generator, at every failure point, must end
 * exactly as the model says for clean delivery, and each request's effect is applied once.
 */
import { describe, expect, it } from 'vitest';
import { InProcessBroker, SagaManager, SagaStatus, type OutgoingRequest, type ResponseListener, type SagaBroker, type SagaResponseData } from '../../src/index.js';
import { collectingLogger } from '../support/harness.js';
import { buildSaga, countingParticipant, definitions, mulberry32, runId, simulate, type Data, type Ledgers, type Rng } from '../support/saga-model.js';

const SEED = Number(process.env.CHAOS_SEED ?? 0xc4a05);

/**
 * Wraps an in-process broker: requests go through; every answer reaches the manager 1–3 times, each
 * copy after its own random delay, so copies of different answers overtake each other.
 */
class MessyDelivery implements SagaBroker {
  readonly inner = new InProcessBroker();
  delivered = 0;
  answers = 0;
  #listener: ResponseListener | undefined;

  constructor(readonly rng: Rng) {
    this.inner.attach((response) => this.#scatter(response));
  }

  attach(listener: ResponseListener): void {
    this.#listener = listener;
  }

  send(request: OutgoingRequest): void {
    this.inner.send(request);
  }

  #scatter(response: SagaResponseData): void {
    this.answers++;
    const copies = 1 + this.rng.int(3);
    for (let i = 0; i < copies; i++) {
      setTimeout(() => {
        this.delivered++;
        this.#listener?.(response);
      }, this.rng.int(6));
    }
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

describe('chaos: answers delivered 1–3 times, shuffled and delayed', () => {
  it(`every saga ends as with clean delivery and no request is applied twice (seed ${SEED})`, async () => {
    console.info(`[delivery-faults] seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    const rng = mulberry32(SEED);
    let sagas = 0;
    let delivered = 0;
    let answers = 0;
    const problems: string[] = [];
    for (let round = 0; answers < 10_000 && round < 20; round++) for (const def of definitions) {
      if (answers >= 10_000) break;
      const ledgers: Ledgers = new Map();
      const saga = buildSaga(`${def.name}-r${round}`, def.steps, ledgers);
      const broker = new MessyDelivery(rng);
      // The participant counts what it applies per requestId; its own dedup is what keeps a re-sent request from being applied twice.
      const applied = new Map<string, number>();
      broker.inner.participant('svc', countingParticipant(ledgers, applied));
      const logger = collectingLogger();
      const manager = new SagaManager({ broker, sagas: [saga], logger, recoverIntervalMs: 0 });
      try {
        const plans = [null, ...simulate(def, null).failurePoints];
        await Promise.all(
          plans.map(async (plan, i) => {
            const run = runId(plan);
            ledgers.set(run, []);
            const data: Data = { run, route: def.route, fail: plan };
            const expected = simulate(def, plan);
            const execution = await manager.run(saga, { context: data, raiseOnError: false, pauseOnDisk: i % 2 === 0 });
            const done = execution.status === SagaStatus.Paused || execution.status === SagaStatus.Running ? await manager.waitFor(execution.uuid, { timeoutMs: 10_000 }) : execution;
            sagas++;
            if (done.status !== expected.status) problems.push(`${def.name}/${run}: ${done.status}, expected ${expected.status}`);
            const ledger = ledgers.get(run) ?? [];
            if (JSON.stringify(ledger) !== JSON.stringify(expected.ledger)) problems.push(`${def.name}/${run}: ledger ${JSON.stringify(ledger)}, expected ${JSON.stringify(expected.ledger)}`);
          }),
        );
        // Let the last copies arrive: they are ignored, and change nothing.
        await new Promise((r) => setTimeout(r, 10));
      } finally {
        await manager.close();
      }
      for (const [requestId, times] of applied) if (times > 1) problems.push(`${def.name}: ${requestId} applied ${times} times`);
      if (logger.lines.some((l) => l.level === 'error')) problems.push(`${def.name}: errors logged: ${JSON.stringify(logger.lines.filter((l) => l.level === 'error'))}`);
      delivered += broker.delivered;
      answers += broker.answers;
    }
    console.info(`[delivery-faults] ${sagas} sagas, ${answers} answers delivered ${delivered} times`);
    expect(problems).toEqual([]);
    expect(answers).toBeGreaterThanOrEqual(10_000);
    expect(delivered).toBeGreaterThan(answers * 1.5);
    expect(sagas).toBeGreaterThan(1_000);
  }, 120_000);
});
