/**
 * Differential test of the transition table against XState (DESIGN §4): the same compiled chart
 * driven by a real XState actor and by the table, with the same events, must have deep-equal
 * persisted snapshots at every rest point, wait on the same requests and deadlines (the table's
 * read from its effects alone, XState's read off its children), and end with the same execution
 * view. Between events the two swap snapshots at random: the table's snapshot goes into a new
 * XState actor and XState's into the table, and both carry on.
 *
 * Runs every saga of the model-based generator at every failure point (some with
 * `autocommit: false`, committed, rejected or rolled back), plus hand-written sagas for what the
 * generator does not make: timeouts, retries with backoff, operators retrying a waiting step or
 * aborting, failing compensations retried and resolved by an operator, async handlers, stale and
 * duplicate events.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SagaMachineEvent } from '../../machines/types.js';
import {
  ManualClock,
  Saga,
  SagaBusinessError,
  SagaRequest,
  SagaStatus,
  isTransactionPhase,
  type JsonValue,
  type OutgoingRequest,
  type SagaResponseData,
} from '../../src/index.js';
import { ActorEngine, definitionOf, TableEngine, type ChartEngine } from '../support/chart-engines.js';
import { buildSaga, definitions, mulberry32, participant, runId, simulate, type Data, type Ledgers, type Rng } from '../support/saga-model.js';

/** How a scripted participant answers: status and content. */
type Answer = { status: 200 | 400 | 500; content: JsonValue };

interface Script {
  respond(request: OutgoingRequest, turn: number): Answer;
  /** How a service answers a reserve, commit or reject (default: yes, acknowledged). */
  vote?(request: OutgoingRequest, turn: number): Answer;
  /** Chance of letting a request's deadline fire instead of answering it (steps with a timeout). */
  timeoutRate?: number;
  autocommit?: boolean;
  /** At the commit decision: commit, reject, or roll back. */
  commit?: boolean | 'rollback';
  /** Chance, while a request waits, of an operator retrying its step now or (one time in four) aborting the execution. */
  interruptRate?: number;
  /** Operator events to send once the execution is errored, in order. */
  operator?: Array<{ type: 'saga.retry-compensation' | 'saga.resolve-compensation'; step: string }>;
}

interface Tally {
  restPoints: number;
  swaps: number;
  stale: number;
  interrupts: number;
  transactions: Record<'committed' | 'rejected' | 'none', number>;
  ends: Record<string, number>;
}

const tally: Tally = { restPoints: 0, swaps: 0, stale: 0, interrupts: 0, transactions: { committed: 0, rejected: 0, none: 0 }, ends: {} };

function sameOrThrow(label: string, what: string, a: unknown, b: unknown): void {
  if (isDeepStrictEqual(a, b)) return;
  throw new Error(`${label}: ${what} differ\n  xstate: ${JSON.stringify(a)}\n  table:  ${JSON.stringify(b)}`);
}

function compare(label: string, actor: ChartEngine, table: ChartEngine): void {
  sameOrThrow(label, 'persisted snapshots', actor.persisted(), table.persisted());
  sameOrThrow(label, 'requests waited on', actor.requests(), table.requests());
  sameOrThrow(label, 'deadlines waited on', actor.timers(), table.timers());
  tally.restPoints++;
}

const responseTo = (request: OutgoingRequest, answer: Answer): SagaMachineEvent => ({
  type: 'saga.response',
  step: request.step,
  phase: request.phase,
  attempt: request.attempt,
  response: { requestId: request.requestId, status: answer.status, content: answer.content, relatedServices: answer.status === 200 ? ['audit'] : [] } satisfies SagaResponseData,
});

/** Drives both engines through one execution; returns the final view (both agree on it). */
async function drive(label: string, saga: Saga<object>, data: Record<string, unknown>, script: Script, rng: Rng): Promise<ReturnType<ChartEngine['view']>> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const compiled = definitionOf(saga, clock);
  const input = { uuid: `u-${label}`, data, autocommit: script.autocommit ?? true };
  let actor: ChartEngine = await ActorEngine.at(compiled, { input });
  let table: ChartEngine = await TableEngine.start(compiled, input);
  const both = async (event: SagaMachineEvent) => {
    await actor.send(event);
    await table.send(event);
  };
  compare(`${label} created`, actor, table);
  await both({ type: 'saga.start' });
  const answered: OutgoingRequest[] = [];
  const operator = [...(script.operator ?? [])];
  for (let turn = 0; turn < 400; turn++) {
    compare(`${label} turn ${turn}`, actor, table);
    const view = table.view();
    sameOrThrow(label, 'execution views', actor.view(), view);
    if (rng.chance(0.35)) {
      // Swap: each engine carries on from the other's snapshot (the table's waits from the "record").
      const fromTable = table.persisted();
      const fromActor = actor.persisted();
      const waits = { requests: table.requests(), timers: table.timers() };
      actor = await ActorEngine.at(compiled, { snapshot: fromTable });
      table = await TableEngine.restore(compiled, fromActor, waits);
      compare(`${label} turn ${turn} after swapping snapshots`, actor, table);
      tally.swaps++;
    }
    const ended = view.status === SagaStatus.Finished || view.status === SagaStatus.Errored;
    if (!ended && answered.length && rng.chance(0.15)) {
      // A duplicate or late answer: both must ignore it alike.
      const old = answered[rng.int(answered.length)]!;
      await both(responseTo(old, { status: 200, content: { late: true } }));
      await both({ type: 'saga.deadline', step: old.step, phase: old.phase, attempt: old.attempt });
      compare(`${label} turn ${turn} after stale events`, actor, table);
      tally.stale++;
    }
    clock.advance(1 + rng.int(5));
    if (view.status === SagaStatus.Finished) return view;
    if (view.status === SagaStatus.Errored) {
      const next = operator.shift();
      if (!next) return view;
      sameOrThrow(label, `can(${next.type})`, actor.can(next), table.can(next));
      await both(next);
      continue;
    }
    if (view.awaitingCommit) {
      const decision: SagaMachineEvent = { type: script.commit === 'rollback' ? 'saga.rollback' : script.commit === false ? 'saga.reject' : 'saga.commit', note: 'decided' };
      sameOrThrow(label, 'can(decision)', actor.can(decision), table.can(decision));
      await both(decision);
      continue;
    }
    const requests = table.requests();
    const timers = table.timers();
    const request = requests[0];
    if (request && rng.chance(script.interruptRate ?? 0)) {
      const interrupt: SagaMachineEvent = rng.chance(0.25) ? { type: 'saga.abort', note: `turn ${turn}` } : { type: 'saga.retry-step', step: request.step };
      sameOrThrow(label, `can(${interrupt.type})`, actor.can(interrupt), table.can(interrupt));
      await both(interrupt);
      tally.interrupts++;
      continue;
    }
    if (request) {
      const transactional = isTransactionPhase(request.phase);
      // A transaction's parts share their phase's deadline (step `$tx`).
      const timer = timers.find((t) => t.event.phase === request.phase && t.event.step === (transactional ? '$tx' : request.step));
      if (timer && rng.chance(script.timeoutRate ?? 0)) {
        clock.advance(Math.max(0, timer.at - clock.now()));
        await both(timer.event);
      } else {
        answered.push(request);
        const answer = transactional ? (script.vote?.(request, turn) ?? { status: 200, content: { ok: true } }) : script.respond(request, turn);
        await both(responseTo(request, answer));
      }
      continue;
    }
    const timer = timers[0];
    if (timer) {
      clock.advance(Math.max(0, timer.at - clock.now()));
      await both(timer.event);
      continue;
    }
    throw new Error(`${label}: stuck in ${JSON.stringify((table.persisted() as { value: unknown }).value)} with nothing to answer`);
  }
  const at = table.persisted() as { value: unknown };
  throw new Error(`${label}: did not end; in ${JSON.stringify(at.value)} waiting on ${JSON.stringify(table.requests().map((r) => r.requestId))}, ${JSON.stringify(table.timers())}`);
}

function count(view: { status: string }): void {
  tally.ends[view.status] = (tally.ends[view.status] ?? 0) + 1;
}

describe('the transition table against XState', () => {
  it.each(definitions.map((d) => [d.name, d] as const))('%s: every failure point, same snapshots at every rest point', async (_name, def) => {
    const ledgers: Ledgers = new Map();
    const saga = buildSaga(def.name, def.steps, ledgers) as unknown as Saga<object>;
    const handlers = participant(ledgers);
    const respond = (request: OutgoingRequest): Answer => {
      const handler = handlers[request.target as keyof typeof handlers];
      try {
        return { status: 200, content: handler(request.content) };
      } catch (err) {
        return { status: err instanceof SagaBusinessError ? 400 : 500, content: { reason: (err as Error).message } };
      }
    };
    const plans = [null, ...simulate(def, null).failurePoints];
    const rng = mulberry32(def.index + 1);
    for (const [i, plan] of plans.entries()) {
      const run = runId(plan);
      ledgers.set(run, []);
      const data: Data = { run, route: def.route, fail: plan };
      const expected = simulate(def, plan);
      const manual = i % 4 === 3;
      const view = await drive(`${def.name}/${run}`, saga, data as unknown as Record<string, unknown>, { respond, autocommit: !manual, commit: i % 8 === 7 ? false : i % 16 === 11 ? 'rollback' : true }, rng);
      // The ending the model predicts (a rejected saga ends errored whatever its steps did).
      expect(view.status, `${def.name}/${run}`).toBe(manual && (i % 8 === 7 || i % 16 === 11) ? SagaStatus.Errored : expected.status);
      count(view);
    }
  });

  it('remote steps with timeouts, retries and backoff, compensations that time out too', async () => {
    const saga = new Saga('timeouts')
      .localStep('prepare')
      .onExecute((ctx) => {
        ctx.prepared = true;
      })
      .onFailure((ctx) => {
        ctx.prepared = false;
      })
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('stock.reserve', { n: 1 }))
      .onSuccess(async (ctx, res) => {
        ctx.reservation = (await res.content<{ id: string }>()).id ?? null;
      })
      .onFailure(() => new SagaRequest('stock.release', {}))
      .timeout(1_000)
      .retry({ attempts: 3, backoffMs: 50 })
      .remoteStep('charge')
      .onExecute(() => new SagaRequest('pay.charge', {}))
      .onError((ctx) => new Error(`declined ${String(ctx.prepared)}`))
      .onFailure(() => new SagaRequest('pay.refund', {}))
      .timeout(500)
      .retry({ attempts: 2 })
      .commit();
    for (let seed = 1; seed <= 60; seed++) {
      const rng = mulberry32(seed * 7919);
      const view = await drive(
        `timeouts-${seed}`,
        saga,
        {},
        {
          timeoutRate: 0.3,
          interruptRate: seed % 3 === 0 ? 0.2 : 0,
          respond: () => {
            const roll = rng.next();
            const answer: Answer = roll < 0.15 ? { status: 500, content: { crash: true } } : roll < 0.3 ? { status: 400, content: { no: true } } : { status: 200, content: { id: `r${seed}` } };
            return answer;
          },
        },
        rng,
      );
      count(view);
    }
  });

  it('failed compensations retried and resolved by an operator, with async handlers', async () => {
    const tick = () => new Promise<void>((r) => setImmediate(r));
    const saga = new Saga('operator')
      .localStep('a')
      .onExecute(async (ctx) => {
        await tick();
        ctx.a = 1;
      })
      .onFailure(async (ctx) => {
        await tick();
        if (ctx.failUndoA === true && ctx.undoTries === undefined) {
          ctx.undoTries = 1;
          throw new Error('undo a failed');
        }
      })
      .remoteStep('b')
      .onExecute(async () => {
        await tick();
        return new SagaRequest('svc.b', {});
      })
      .onFailure(() => new SagaRequest('svc.undo-b', {}))
      .conditionalStep('c')
      .ifThen(async (ctx) => (await Promise.resolve(ctx.branch)) === 'x', new Saga('x').remoteStep('x1').onExecute(() => new SagaRequest('svc.x1', {})).onFailure(() => new SagaRequest('svc.undo-x1', {})).commit())
      .elseThen(new Saga('y').localStep('y1').onExecute((ctx) => { ctx.y = true; }).commit())
      .remoteStep('d')
      .onExecute(() => new SagaRequest('svc.d', {}))
      .commit();
    for (let seed = 1; seed <= 24; seed++) {
      const rng = mulberry32(seed * 104729);
      const undoFails = new Set<string>();
      const view = await drive(
        `operator-${seed}`,
        saga,
        { failUndoA: seed % 2 === 0, branch: seed % 3 === 0 ? 'y' : 'x' },
        {
          interruptRate: seed % 5 === 0 ? 0.3 : 0,
          respond: (request): Answer => {
            if (request.target === 'svc.d') return { status: 400, content: { refused: true } };
            if (request.target.startsWith('svc.undo') && !undoFails.has(request.target) && seed % 4 < 2) {
              undoFails.add(request.target);
              return { status: 400, content: { cannot: true } };
            }
            return { status: 200, content: {} };
          },
          operator: [
            { type: 'saga.retry-compensation', step: 'c/x/x1' },
            { type: 'saga.retry-compensation', step: 'b' },
            { type: 'saga.resolve-compensation', step: 'a' },
            { type: 'saga.retry-compensation', step: 'a' },
          ],
        },
        rng,
      );
      expect(view.status).toBe(SagaStatus.Errored);
      count(view);
    }
  });

  it('the two-phase commit: votes refused, reserves timing out, commits and rejects failing and sent again, operator retries and aborts', async () => {
    const saga = new Saga('two-phase', {
      commitTimeoutMs: 300,
      commitRetryBackoffMs: 40,
      // Saga-level callbacks: one sync, one async that fails when the commit was refused.
      onSuccess: (ctx) => {
        ctx.celebrated = true;
      },
      onFailure: async (ctx, error) => {
        await new Promise<void>((r) => setImmediate(r));
        ctx.failedWith = error.code;
        if (error.code === 'SAGA_COMMIT_FAILED') throw new Error('the alert could not be sent');
      },
    })
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('stock.reserve', {}))
      .onFailure(() => new SagaRequest('stock.release', {}))
      .localStep('note')
      .onExecute((ctx) => {
        ctx.noted = true;
      })
      .remoteStep('charge')
      .onExecute(() => new SagaRequest('payment.charge', {}))
      .onFailure(() => new SagaRequest('payment.refund', {}))
      .remoteStep('ship')
      .onExecute(() => new SagaRequest('shipping.arrange', {}))
      .commit();
    const decisions = [true, false, 'rollback'] as const;
    for (let seed = 1; seed <= 48; seed++) {
      const rng = mulberry32(seed * 15485863);
      const view = await drive(
        `two-phase-${seed}`,
        saga,
        {},
        {
          autocommit: seed % 4 !== 0,
          commit: decisions[seed % 3]!,
          timeoutRate: seed % 5 === 0 ? 0.25 : 0.05,
          interruptRate: seed % 6 === 0 ? 0.15 : 0,
          respond: (request): Answer => (request.target === 'shipping.arrange' && seed % 7 === 0 ? { status: 400, content: { noCourier: true } } : { status: 200, content: {} }),
          vote: (request): Answer => {
            const roll = rng.next();
            if (request.phase === 'reserve') return roll < 0.2 ? { status: 400, content: { insufficient: true } } : roll < 0.25 ? { status: 500, content: { crash: true } } : { status: 200, content: {} };
            return roll < 0.3 ? { status: 500, content: { down: true } } : { status: 200, content: {} };
          },
        },
        rng,
      );
      count(view);
      tally.transactions[view.transaction.commit ? 'committed' : view.transaction.reject ? 'rejected' : 'none']++;
      // The callback of the ending ran, and left its mark (or its failure).
      if (view.status === SagaStatus.Finished) expect(view.context).toMatchObject({ celebrated: true });
      else if (view.error?.code === 'SAGA_COMMIT_FAILED') expect(view.callbackErrors.onFailure?.message).toBe('the alert could not be sent');
      else expect(view.context).toMatchObject({ failedWith: view.error?.code });
    }
  });

  it('compared enough: rest points, swaps, stale events, and both endings', () => {
    expect(tally.restPoints).toBeGreaterThan(3_000);
    expect(tally.swaps).toBeGreaterThan(500);
    expect(tally.stale).toBeGreaterThan(100);
    expect(tally.interrupts).toBeGreaterThan(20);
    expect(tally.transactions.committed).toBeGreaterThan(5);
    expect(tally.transactions.rejected).toBeGreaterThan(5);
    expect(tally.ends[SagaStatus.Finished]).toBeGreaterThan(50);
    expect(tally.ends[SagaStatus.Errored]).toBeGreaterThan(300);
  });
});
