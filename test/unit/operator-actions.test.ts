/**
 * Operator actions (abort, retry a waiting step, retry or resolve a failed compensation, commit
 * decisions): each is recorded in the execution's history with its note, works on an execution
 * held in memory and on one paused on disk, and is refused with a coded error where it makes no
 * sense.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  InMemorySagaRepository,
  Saga,
  SagaInvalidStateError,
  SagaRequest,
  SagaRollbackError,
  SagaStatus,
  SagaStepStatus,
  type SagaExecution,
} from '../../src/index.js';
import { closeManagers, collectingLogger, ManualBroker, managerWith, rows, stepOf, until } from '../support/harness.js';

afterEach(closeManagers);

const ORDER = new Saga('operated')
  .localStep('validate')
  .onExecute((ctx) => {
    ctx.validated = true;
  })
  .onFailure((ctx) => {
    ctx.validated = false;
  })
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.reserve', {}))
  .onFailure(() => new SagaRequest('inventory.release', {}))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .onFailure(() => new SagaRequest('payment.refund', {}))
  .commit();

/** A manager whose executions wait paused on disk (nothing cached: every event reads the repository), or in memory. */
function setup(where: 'memory' | 'disk') {
  const broker = new ManualBroker();
  const repository = new InMemorySagaRepository();
  const manager = managerWith({ broker, repository, logger: collectingLogger(), ...(where === 'disk' ? { pausedCacheSize: 0 } : {}) });
  return { broker, repository, manager, pauseOnDisk: where === 'disk' };
}

/** Runs ORDER until it waits on `charge`. */
async function waitingOnCharge(where: 'memory' | 'disk') {
  const s = setup(where);
  const first = s.manager.run(ORDER, { pauseOnDisk: s.pauseOnDisk, raiseOnError: false });
  const running = s.pauseOnDisk ? null : first;
  const uuid = s.pauseOnDisk ? (await first).uuid : await until(() => s.broker.requests.length === 1, 'reserve sent').then(() => s.broker.requests[0]!.uuid);
  await until(() => s.broker.requests.length === 1, 'reserve sent');
  s.broker.answer(s.broker.last('inventory.reserve'), 200);
  await until(() => s.broker.requests.length === 2, 'charge sent');
  if (s.pauseOnDisk) expect(s.manager.liveCount).toBe(0);
  return { ...s, uuid, running };
}

describe.each(['memory', 'disk'] as const)('on an execution in %s', (where) => {
  it('abort() stops it where it waits, compensates that step and the ones before, and ends errored with SAGA_ABORTED', async () => {
    const { manager, broker, uuid } = await waitingOnCharge(where);
    const aborting = manager.abort(uuid, { note: 'customer called' });
    await until(() => broker.requests.some((r) => r.target === 'payment.refund'), 'charge is compensated');
    broker.answer(broker.last('payment.refund'));
    await until(() => broker.requests.some((r) => r.target === 'inventory.release'), 'reserve is compensated');
    broker.answer(broker.last('inventory.release'));
    const aborted = await aborting;
    expect(aborted.status).toBe(SagaStatus.Errored);
    expect(aborted.error).toMatchObject({ code: 'SAGA_ABORTED', step: null });
    expect(aborted.error?.message).toContain('customer called');
    expect(rows(aborted)).toEqual([
      ['validate', SagaStepStatus.Finished, true],
      ['reserve', SagaStepStatus.Finished, true],
      ['charge', SagaStepStatus.ErroredByOnExecute, true],
    ]);
    expect(stepOf(aborted, 'charge').error?.code).toBe('SAGA_ABORTED');
    expect(aborted.history).toEqual([{ action: 'abort', at: expect.any(Number), note: 'customer called' }]);
    expect(aborted.alreadyRollback).toBe(true);
    // The answer to the charge that comes after the abort changes nothing.
    broker.answer(broker.last('payment.charge'), 200);
    await until(async () => manager.stats().ignoredResponses.late === 1, 'the late answer is ignored');
    expect((await manager.get(uuid)).status).toBe(SagaStatus.Errored);
    // A second abort answers the same, and nothing more is sent; a retry of the step is refused.
    const sent = broker.requests.length;
    expect((await manager.abort(uuid)).toJSON()).toEqual((await manager.get(uuid)).toJSON());
    expect(broker.requests).toHaveLength(sent);
    await expect(manager.retryStep(uuid, 'charge')).rejects.toBeInstanceOf(SagaInvalidStateError);
  });

  it('retryStep() sends the waiting request again as a new attempt; the old attempt’s answer is ignored', async () => {
    const { manager, broker, uuid, running } = await waitingOnCharge(where);
    const before = await manager.get(uuid);
    expect(before.pausedStep).toBe('charge');
    const first = broker.last('payment.charge');
    const retried = await manager.retryStep(uuid, 'charge', { note: 'payment was down' });
    expect(retried.history).toEqual([{ action: 'retry-step', at: expect.any(Number), step: 'charge', note: 'payment was down' }]);
    const second = broker.last('payment.charge');
    expect(second.attempt).toBe(2);
    expect(second.requestId).not.toBe(first.requestId);
    broker.answer(first, 200);
    await until(async () => manager.stats().ignoredResponses.duplicate === 1, 'attempt 1’s answer is ignored');
    broker.answer(second, 200);
    const done = running ? await running : await manager.waitFor(uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(stepOf(done, 'charge').attempts).toBe(2);
    await expect(manager.retryStep(uuid, 'charge')).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
  });

  it('retryStep() of a step that does not wait, and abort() during a rollback, are refused', async () => {
    const { manager, broker, uuid } = await waitingOnCharge(where);
    await expect(manager.retryStep(uuid, 'reserve')).rejects.toThrow(/step "reserve" is not waiting/);
    await expect(manager.retryStep(uuid, 'no-such-step')).rejects.toBeInstanceOf(SagaInvalidStateError);
    broker.answer(broker.last('payment.charge'), 400);
    await until(() => broker.requests.some((r) => r.target === 'inventory.release'), 'the rollback is under way');
    await expect(manager.abort(uuid)).rejects.toThrow(/not moving forward/);
    broker.answer(broker.last('inventory.release'));
    expect((await manager.waitFor(uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Errored);
  });
});

describe('commit decisions and compensations, recorded', () => {
  it('rollback() at the commit decision compensates and records it; resolveCompensation() keeps its note', async () => {
    const { manager, broker } = setup('memory');
    const running = manager.run(ORDER, { autocommit: false, raiseOnError: false });
    await until(() => broker.requests.length === 1, 'reserve sent');
    broker.answer(broker.last('inventory.reserve'));
    await until(() => broker.requests.length === 2, 'charge sent');
    broker.answer(broker.last('payment.charge'));
    const waiting = await running;
    expect(waiting.awaitingCommit).toBe(true);
    const rollingBack = waiting.rollback();
    await until(() => broker.requests.some((r) => r.target === 'payment.refund'), 'refund sent');
    broker.answer(broker.last('payment.refund'), 400, { cannot: true });
    await until(() => broker.requests.some((r) => r.target === 'inventory.release'), 'release sent');
    broker.answer(broker.last('inventory.release'));
    // A compensation failed: the rollback ended, but not cleanly.
    const failed = await rollingBack.then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(SagaRollbackError);
    expect(failed).toMatchObject({ code: 'SAGA_ROLLBACK_FAILED', steps: ['charge'] });
    const rolledBack: SagaExecution = (failed as SagaRollbackError).execution;
    expect(rolledBack.status).toBe(SagaStatus.Errored);
    expect(stepOf(rolledBack, 'charge').status).toBe(SagaStepStatus.ErroredOnFailure);
    const resolved = await manager.resolveCompensation(rolledBack.uuid, 'charge', { note: 'refunded by hand, ticket 42' });
    expect(resolved.history.map((h) => [h.action, h.step ?? null, h.note ?? null])).toEqual([
      ['rollback', null, null],
      ['resolve-compensation', 'charge', 'refunded by hand, ticket 42'],
    ]);
    expect(stepOf(resolved, 'charge').compensation?.resolved).toBe(true);
  });
});

describe('manager.act(uuid, action, input): operator actions by name', () => {
  it('runs each by name, takes the paused step by default, reports a rollback that failed as its outcome, and refuses what does not fit', async () => {
    const { manager, broker, uuid } = await waitingOnCharge('memory');
    const retried = await manager.act(uuid, 'retry-step', { note: 'again' });
    expect(retried.outcome).toBeNull();
    expect(broker.last('payment.charge').attempt).toBe(2);
    expect(retried.execution.history.at(-1)).toMatchObject({ action: 'retry-step', step: 'charge', note: 'again' });

    const aborting = manager.act(uuid, 'abort');
    await until(() => broker.requests.some((r) => r.target === 'payment.refund'), 'refund sent');
    broker.answer(broker.last('payment.refund'), 400, { cannot: true });
    await until(() => broker.requests.some((r) => r.target === 'inventory.release'), 'release sent');
    broker.answer(broker.last('inventory.release'));
    const aborted = await aborting;
    expect(aborted.outcome?.code).toBe('SAGA_ROLLBACK_FAILED');
    expect(aborted.execution.status).toBe(SagaStatus.Errored);

    // The only failed compensation is the one meant when no step is named.
    const resolved = await manager.act(uuid, 'resolve-compensation', { note: 'by hand' });
    expect(stepOf(resolved.execution, 'charge').compensation?.resolved).toBe(true);
    await expect(manager.act(uuid, 'retry-compensation')).rejects.toBeInstanceOf(SagaInvalidStateError);
    await expect(manager.act(uuid, 'retry-step')).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    await expect(manager.act(uuid, 'resolve-transaction')).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    await expect(manager.act(uuid, 'explode' as never)).rejects.toBeInstanceOf(RangeError);
  });
});
