/**
 * "Always rehydrate": a saga actor is driven by hand (its requests answered from a script), its
 * persisted snapshot is recorded at every snapshot it emits, and each recorded snapshot is
 * restored into a fresh actor that is driven on with the same script. Whatever the moment of the
 * "crash", the restored run must end exactly as the uninterrupted one: same status, same step
 * views, same context, and the same requests answered (a restore may re-issue a pending request
 * with the same requestId, so the combined sequence is deduplicated by requestId).
 *
 * XState restarts promise actors on restore, so a handler may run twice: outcomes are compared,
 * not handler calls.
 */
import { describe, expect, it } from 'vitest';
import type { AnyActorRef, Snapshot } from 'xstate';
import {
  createSagaActor,
  ManualClock,
  pendingWork,
  Saga,
  SagaRequest,
  SagaResponseStatus,
  sagaStatusOf,
  SagaStatus,
  SagaStepStatus,
  stepViews,
  type JsonValue,
  type OutgoingRequest,
  type SagaActor,
  type SagaMachineEvent,
  type SagaStepView,
} from '../../src/index.js';
import { settle } from '../support/harness.js';

interface Answer {
  requestId: string;
  target: string;
  content: JsonValue;
  status: SagaResponseStatus;
}

interface Outcome {
  status: string;
  steps: SagaStepView[];
  data: unknown;
  failure: unknown;
  services: string[];
}

interface Scenario {
  name: string;
  saga: Saga<Record<string, unknown>>;
  context: Record<string, unknown>;
  /** Status of the answer to a request, by `phase:step:attempt`; 200 when not listed. */
  statuses: Record<string, SagaResponseStatus>;
  /** What the uninterrupted run must do, so the comparison is against a run known to be right. */
  baseline(outcome: Outcome, answered: readonly string[]): void;
}

const keyOf = (r: { phase: string; step: string; attempt: number }) => `${r.phase}:${r.step}:${r.attempt}`;

function answerFor(scenario: Scenario, request: OutgoingRequest): { status: SagaResponseStatus; content: JsonValue } {
  const status = scenario.statuses[keyOf(request)] ?? SagaResponseStatus.SUCCESS;
  return { status, content: { id: `${request.step}#${request.attempt}`, status } };
}

/**
 * Drives an actor to its end: starts the saga when it is `created`, answers every request it
 * lists (once per actor), lets handlers run. Appends what it answered to `log`.
 */
async function drive(actor: SagaActor, scenario: Scenario, log: Answer[]): Promise<void> {
  const mine = new Set<string>();
  for (let round = 0; round < 2_000; round++) {
    const snapshot = actor.getSnapshot();
    if (snapshot.status === 'error') throw new Error(`the actor failed: ${String(snapshot.error)}`);
    const status = sagaStatusOf(snapshot);
    if (status === SagaStatus.Finished || status === SagaStatus.Errored) return;
    if (status === SagaStatus.Created) {
      actor.send({ type: 'saga.start' });
      continue;
    }
    const work = pendingWork(snapshot);
    const pending = work.requests.filter((r) => !mine.has(r.requestId));
    if (pending.length === 0) {
      await settle(1);
      if (round > 200 && work.requests.length === 0 && work.timers.length === 0) {
        const children = Object.entries(snapshot.children as Record<string, AnyActorRef | undefined>).map(([id, child]) => {
          const s = child?.getSnapshot() as { status?: string; value?: unknown } | undefined;
          return `${id}=${s?.status}(${JSON.stringify(s?.value ?? null)})`;
        });
        throw new Error(
          `stuck ${status} in ${JSON.stringify(snapshot.value)} with no request to answer and no deadline; children: ${children.join(', ') || 'none'}`,
        );
      }
      continue;
    }
    for (const request of pending) {
      mine.add(request.requestId);
      const { status: code, content } = answerFor(scenario, request);
      log.push({ requestId: request.requestId, target: request.target, content: request.content, status: code });
      const event: SagaMachineEvent = {
        type: 'saga.response',
        step: request.step,
        phase: request.phase,
        attempt: request.attempt,
        response: { requestId: request.requestId, status: code, content, relatedServices: [] },
      };
      actor.send(event);
    }
  }
  throw new Error(`${scenario.name}: the saga did not end (status ${sagaStatusOf(actor.getSnapshot())})`);
}

function outcomeOf(scenario: Scenario, actor: SagaActor): Outcome {
  const snapshot = actor.getSnapshot();
  return {
    status: sagaStatusOf(snapshot),
    steps: stepViews(scenario.saga, snapshot),
    data: snapshot.context.data,
    failure: snapshot.context.failure,
    services: snapshot.context.services,
  };
}

function dedupe(answers: readonly Answer[]): Answer[] {
  const seen = new Set<string>();
  return answers.filter((a) => (seen.has(a.requestId) ? false : (seen.add(a.requestId), true)));
}

const clock = new ManualClock(Date.UTC(2026, 0, 1));
const req = (target: string, content: JsonValue = {}) => new SagaRequest(target, content);
const idOf = async (res: { content<T>(): Promise<T> }) => (await res.content<{ id: string }>()).id;
const view = (outcome: Outcome, path: string) => {
  const found = outcome.steps.find((s) => s.path === path);
  if (!found) throw new Error(`no step ${path}`);
  return found;
};

// ---------------------------------------------------------------------------------------------

const SUCCESS: Scenario = {
  name: 'success, with a 500 retried',
  saga: new Saga('rh-success')
    .localStep('prepare')
    .onExecute((ctx) => {
      ctx.prepared = true;
    })
    .remoteStep('charge')
    .onExecute((ctx) => req('payment.charge', { amount: ctx.amount as number }))
    .onSuccess(async (ctx, res) => {
      ctx.chargeId = await idOf(res);
    })
    .onFailure(() => req('payment.refund'))
    .remoteStep('ship')
    .onExecute(() => req('shipping.ship'))
    .onSuccess(async (ctx, res) => {
      ctx.shipment = await idOf(res);
    })
    .retry({ attempts: 2 })
    .localStep('done')
    .onExecute((ctx) => {
      ctx.done = true;
    })
    .commit(),
  context: { amount: 10 },
  statuses: { 'execute:ship:1': SagaResponseStatus.SYSTEM_ERROR },
  baseline(outcome, answered) {
    expect(outcome.status).toBe(SagaStatus.Finished);
    expect(outcome.data).toEqual({ amount: 10, prepared: true, chargeId: 'charge#1', shipment: 'ship#2', done: true });
    expect(outcome.steps.map((s) => [s.path, s.status, s.compensated])).toEqual([
      ['prepare', SagaStepStatus.Finished, false],
      ['charge', SagaStepStatus.Finished, false],
      ['ship', SagaStepStatus.Finished, false],
      ['done', SagaStepStatus.Finished, false],
    ]);
    expect(view(outcome, 'ship').attempts).toBe(2);
    // Then the two-phase commit with the services that took part: all reserve, then all commit.
    expect(answered).toEqual(['execute:charge:1', 'execute:ship:1', 'execute:ship:2', 'reserve:$tx/payment:1', 'reserve:$tx/shipping:1', 'commit:$tx/payment:1', 'commit:$tx/shipping:1']);
  },
};

const REFUSED: Scenario = {
  name: 'a 400 without onError, compensated',
  saga: new Saga('rh-refused')
    .localStep('open')
    .onExecute((ctx) => {
      ctx.opened = true;
    })
    .onFailure((ctx) => {
      ctx.closed = true;
    })
    .remoteStep('reserve')
    .onExecute(() => req('inventory.reserve', { sku: 'a' }))
    .onSuccess(async (ctx, res) => {
      ctx.reservation = await idOf(res);
    })
    .onFailure((ctx) => req('inventory.release', { id: ctx.reservation as string }))
    .remoteStep('charge')
    .onExecute(() => req('payment.charge'))
    .onFailure(() => req('payment.refund'))
    .localStep('never')
    .onExecute((ctx) => {
      ctx.never = true;
    })
    .onFailure((ctx) => {
      ctx.neverUndone = true;
    })
    .commit(),
  context: {},
  statuses: { 'execute:charge:1': SagaResponseStatus.ERROR },
  baseline(outcome, answered) {
    expect(outcome.status).toBe(SagaStatus.Errored);
    expect(outcome.data).toEqual({ opened: true, reservation: 'reserve#1', closed: true });
    expect(outcome.steps.map((s) => [s.path, s.status, s.compensated])).toEqual([
      ['open', SagaStepStatus.Finished, true],
      ['reserve', SagaStepStatus.Finished, true],
      ['charge', SagaStepStatus.ErroredByOnExecute, false],
      ['never', SagaStepStatus.Created, false],
    ]);
    expect(view(outcome, 'charge').compensation).toBeNull();
    expect(outcome.failure).toMatchObject({ step: 'charge' });
    // The rollback ends by rejecting the transactions of every service that took part.
    expect(answered).toEqual(['execute:reserve:1', 'execute:charge:1', 'compensate:reserve:1', 'reject:$tx/inventory:1', 'reject:$tx/payment:1']);
  },
};

const EXPRESS = new Saga('express')
  .remoteStep('book')
  .onExecute((ctx) => req('courier.book', { weight: ctx.weight as number }))
  .onSuccess(async (ctx, res) => {
    ctx.booking = await idOf(res);
  })
  .onFailure((ctx) => req('courier.cancel', { id: ctx.booking as string }))
  .localStep('label')
  .onExecute((ctx) => {
    ctx.label = `express:${ctx.booking as string}`;
  })
  .commit();
const STANDARD = new Saga('standard')
  .localStep('post')
  .onExecute((ctx) => {
    ctx.label = 'standard';
  })
  .commit();

const BRANCH: Scenario = {
  name: 'a conditional branch chosen by the context',
  saga: new Saga('rh-branch')
    .localStep('weigh')
    .onExecute((ctx) => {
      ctx.express = (ctx.weight as number) < 5;
    })
    .conditionalStep('shipping')
    .ifThen((ctx) => ctx.express === true, EXPRESS)
    .elseThen(STANDARD)
    .remoteStep('notify')
    .onExecute((ctx) => req('mail.send', { label: ctx.label as string }))
    .commit(),
  context: { weight: 2 },
  statuses: {},
  baseline(outcome, answered) {
    expect(outcome.status).toBe(SagaStatus.Finished);
    expect(outcome.data).toEqual({ weight: 2, express: true, booking: 'shipping/express/book#1', label: 'express:shipping/express/book#1' });
    expect(outcome.steps.map((s) => [s.path, s.status, s.parent])).toEqual([
      ['weigh', SagaStepStatus.Finished, null],
      ['shipping', SagaStepStatus.Finished, null],
      ['shipping/express/book', SagaStepStatus.Finished, 'shipping'],
      ['shipping/express/label', SagaStepStatus.Finished, 'shipping'],
      ['notify', SagaStepStatus.Finished, null],
    ]);
    expect(view(outcome, 'shipping').branch).toBe('express');
    expect(answered).toEqual(['execute:shipping/express/book:1', 'execute:notify:1', 'reserve:$tx/courier:1', 'reserve:$tx/mail:1', 'commit:$tx/courier:1', 'commit:$tx/mail:1']);
  },
};

const STOCK = new Saga('stock')
  .remoteStep('reserve')
  .onExecute(() => req('inventory.reserve'))
  .onSuccess(async (ctx, res) => {
    ctx.reservation = await idOf(res);
  })
  .onFailure((ctx) => req('inventory.release', { id: ctx.reservation as string }))
  .commit();

const COMPENSATE: Scenario = {
  name: 'remote compensations, one retried after a 500, one of the failing step itself',
  saga: new Saga('rh-compensate')
    .remoteStep('hold')
    .onExecute(() => req('bank.hold'))
    .onSuccess(async (ctx, res) => {
      ctx.hold = await idOf(res);
    })
    .onFailure((ctx) => req('bank.release', { hold: ctx.hold as string }))
    .retry({ attempts: 2 })
    .conditionalStep('goods')
    .ifThen(() => true, STOCK)
    .remoteStep('pay')
    .onExecute(() => req('payment.charge'))
    .onSuccess(() => new Error('the receipt does not add up'))
    .onFailure(() => req('payment.refund'))
    .commit(),
  context: {},
  statuses: { 'compensate:hold:1': SagaResponseStatus.SYSTEM_ERROR },
  baseline(outcome, answered) {
    expect(outcome.status).toBe(SagaStatus.Errored);
    expect(outcome.steps.map((s) => [s.path, s.status, s.compensated])).toEqual([
      ['hold', SagaStepStatus.Finished, true],
      ['goods', SagaStepStatus.Finished, true],
      ['goods/stock/reserve', SagaStepStatus.Finished, true],
      ['pay', SagaStepStatus.ErroredOnSuccess, true],
    ]);
    expect(view(outcome, 'hold').compensation).toMatchObject({ attempts: 2, error: null });
    expect(outcome.failure).toMatchObject({ step: 'pay' });
    expect(answered).toEqual([
      'execute:hold:1',
      'execute:goods/stock/reserve:1',
      'execute:pay:1',
      'compensate:pay:1',
      'compensate:goods/stock/reserve:1',
      'compensate:hold:1',
      'compensate:hold:2',
      'reject:$tx/bank:1',
      'reject:$tx/inventory:1',
      'reject:$tx/payment:1',
    ]);
  },
};

// ---------------------------------------------------------------------------------------------

describe('always rehydrate: restoring any snapshot of a run ends as the uninterrupted run', () => {
  it.each([SUCCESS, REFUSED, BRANCH, COMPENSATE].map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
    const uuid = `rh-${scenario.saga.name}`;
    const original = createSagaActor(scenario.saga, { uuid, context: scenario.context, clock });
    const log: Answer[] = [];
    const records: Array<{ json: string; answered: number; value: string }> = [];
    const failures: unknown[] = [];
    original.subscribe({
      next: (snapshot) =>
        records.push({ json: JSON.stringify(original.getPersistedSnapshot()), answered: log.length, value: JSON.stringify(snapshot.value) }),
      error: (err) => failures.push(err),
    });
    original.start();
    await drive(original, scenario, log);
    const baseline = outcomeOf(scenario, original);
    original.stop();
    expect(failures).toEqual([]);
    scenario.baseline(
      baseline,
      log.map((a) => {
        const [, phase, attempt, ...step] = a.requestId.split('/');
        return `${phase}:${step.join('/')}:${attempt}`;
      }),
    );
    expect(records.length).toBeGreaterThan(8);

    const problems: string[] = [];
    for (const [k, record] of records.entries()) {
      const at = `snapshot #${k} of ${records.length} (${record.value})`;
      const snapshot = JSON.parse(record.json) as Snapshot<unknown>;
      const restored = createSagaActor(scenario.saga, { snapshot, clock });
      const restoreErrors: unknown[] = [];
      restored.subscribe({ error: (err) => restoreErrors.push(err) });
      restored.start();
      if (restored.getSnapshot().status === 'error') {
        problems.push(`${at}: restores to an actor in error`);
        restored.stop();
        continue;
      }
      const after: Answer[] = [];
      try {
        await drive(restored, scenario, after);
      } catch (err) {
        problems.push(`${at}: ${(err as Error).message}`);
        restored.stop();
        continue;
      }
      const outcome = outcomeOf(scenario, restored);
      restored.stop();
      if (restoreErrors.length) problems.push(`${at}: the restored actor reported ${String(restoreErrors[0])}`);
      if (JSON.stringify(outcome) !== JSON.stringify(baseline)) {
        for (const key of Object.keys(baseline) as Array<keyof Outcome>) {
          if (JSON.stringify(outcome[key]) !== JSON.stringify(baseline[key])) {
            problems.push(`${at}: ${key}: expected ${JSON.stringify(baseline[key])}, got ${JSON.stringify(outcome[key])}`);
          }
        }
      }
      const combined = dedupe([...log.slice(0, record.answered), ...after]);
      if (JSON.stringify(combined) !== JSON.stringify(log)) {
        problems.push(`${at}: requests answered: expected ${JSON.stringify(log.map((a) => a.requestId))}, got ${JSON.stringify(combined.map((a) => a.requestId))}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
