/**
 * Timeouts and retries of remote steps and remote compensations (DESIGN.md §3), on fake time: every
 * manager runs on a `ManualClock`, and time moves only by `clock.advance(ms)`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  formatRequestId,
  ManualClock,
  Saga,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  type ParticipantRequestInfo,
} from '../../src/index.js';
import { closeManagers, collectingLogger, deferred, managerWith, never, recordingBroker, rows, settle, stepOf, until } from '../support/harness.js';

afterEach(closeManagers);

interface Booking {
  orderId: string;
  reservationId?: string;
  bookingId?: string;
}


/** Remote step `reserve` (inventory.reserve), compensated by inventory.release. */
function reserve(saga: Saga<Booking>) {
  return saga
    .remoteStep('reserve')
    .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId }))
    .onSuccess(async (ctx, res) => {
      ctx.reservationId = (await res.content<{ id: string }>()).id;
    })
    .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId ?? null }));
}

describe('timeouts', () => {
  it('retries an attempt that timed out with a new request id, and finishes on the answer to the retry', async () => {
    const clock = new ManualClock();
    const calls: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      carrier: {
        'carrier.book': (_content, info) => {
          calls.push(info);
          return info.attempt === 1 ? never() : { bookingId: 'bk-2' };
        },
      },
    });
    const saga = new Saga<Booking>('book-with-timeout')
      .remoteStep('book')
      .onExecute(() => new SagaRequest('carrier.book', {}))
      .onSuccess(async (ctx, res) => {
        ctx.bookingId = (await res.content<{ bookingId: string }>()).bookingId;
      })
      .timeout(1_000)
      .retry({ attempts: 3 })
      .commit();
    const manager = managerWith({ broker, clock });
    const start = clock.now();

    const running = manager.run(saga, { context: { orderId: 'o-1' }, uuid: 'exec-timeout' });
    await until(() => calls.length === 1, 'attempt 1 is sent');

    clock.advance(999);
    await settle();
    expect(calls).toHaveLength(1);

    clock.advance(1);
    await until(() => calls.length === 2, 'attempt 2 is sent');
    const execution = await running;

    expect(calls.map((c) => [c.attempt, c.phase, c.step])).toEqual([
      [1, 'execute', 'book'],
      [2, 'execute', 'book'],
    ]);
    expect(calls[0]!.requestId).toBe(formatRequestId({ uuid: 'exec-timeout', step: 'book', phase: 'execute', attempt: 1 }));
    expect(calls[1]!.requestId).toBe(formatRequestId({ uuid: 'exec-timeout', step: 'book', phase: 'execute', attempt: 2 }));
    expect(calls[0]!.requestId).not.toBe(calls[1]!.requestId);
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([['book', SagaStepStatus.Finished, false]]);
    const book = stepOf(execution, 'book');
    expect(book.attempts).toBe(2);
    expect(book.error).toBeNull();
    expect(book.finishedAt! - book.startedAt!).toBe(1_000);
    expect(book.startedAt).toBe(start);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-1', bookingId: 'bk-2' });
    expect(execution.errors).toEqual([]);
    expect(seen).toEqual(['carrier.book', 'carrier.book']);
    await manager.close();
  });

  it('fails the step with SAGA_STEP_TIMEOUT once every attempt timed out, and compensates the steps before it only', async () => {
    const clock = new ManualClock();
    const calls: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      inventory: { 'inventory.reserve': () => ({ id: 'r-1' }), 'inventory.release': () => ({ released: true }) },
      carrier: {
        'carrier.book': (_content, info) => {
          calls.push(info);
          return never();
        },
        'carrier.cancel': () => ({ cancelled: true }),
      },
    });
    const saga = reserve(new Saga<Booking>('book-times-out'))
      .remoteStep('book')
      .onExecute(() => new SagaRequest('carrier.book', {}))
      .onFailure(() => new SagaRequest('carrier.cancel', {}))
      .timeout(1_000)
      .retry({ attempts: 2 })
      .commit();
    const manager = managerWith({ broker, clock });

    const running = manager.run(saga, { context: { orderId: 'o-2' }, raiseOnError: false, uuid: 'exec-exhausted' });
    await until(() => calls.length === 1, 'attempt 1 is sent');
    clock.advance(1_000);
    await until(() => calls.length === 2, 'attempt 2 is sent');
    clock.advance(999);
    await settle();
    expect(seen).toEqual(['inventory.reserve', 'carrier.book', 'carrier.book']);
    clock.advance(1);
    const execution = await running;

    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, true],
      ['book', SagaStepStatus.ErroredByOnExecute, false],
    ]);
    const book = stepOf(execution, 'book');
    expect(book.attempts).toBe(2);
    expect(book.error?.code).toBe('SAGA_STEP_TIMEOUT');
    expect(book.compensation).toBeNull();
    expect(book.finishedAt! - book.startedAt!).toBe(2_000);
    expect(execution.error).toMatchObject({ step: 'book', code: 'SAGA_STEP_TIMEOUT' });
    expect(execution.errors.map((e) => [e.step, e.phase, e.code])).toEqual([['book', 'execute', 'SAGA_STEP_TIMEOUT']]);
    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(seen).toEqual(['inventory.reserve', 'carrier.book', 'carrier.book', 'inventory.release']);
    await manager.close();
  });

  it('ignores a late answer to attempt 1 that arrives after attempt 2 was sent', async () => {
    const clock = new ManualClock();
    const logger = collectingLogger();
    const answers = new Map<number, ReturnType<typeof deferred<{ bookingId: string }>>>();
    const calls: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      carrier: {
        'carrier.book': (_content, info) => {
          calls.push(info);
          const answer = deferred<{ bookingId: string }>();
          answers.set(info.attempt, answer);
          return answer.promise;
        },
      },
    });
    let successes = 0;
    const saga = new Saga<Booking>('book-late-answer')
      .remoteStep('book')
      .onExecute(() => new SagaRequest('carrier.book', {}))
      .onSuccess(async (ctx, res) => {
        successes++;
        ctx.bookingId = (await res.content<{ bookingId: string }>()).bookingId;
      })
      .timeout(1_000)
      .retry({ attempts: 2 })
      .commit();
    const manager = managerWith({ broker, clock, logger });

    const running = manager.run(saga, { context: { orderId: 'o-3' }, uuid: 'exec-late' });
    await until(() => calls.length === 1, 'attempt 1 is sent');
    clock.advance(1_000);
    await until(() => calls.length === 2, 'attempt 2 is sent');

    const ignoredBefore = logger.lines.filter((l) => l.level === 'info').length;
    answers.get(1)!.resolve({ bookingId: 'bk-late' });
    await until(() => logger.lines.filter((l) => l.level === 'info').length === ignoredBefore + 1, 'the late answer is logged as ignored');
    await settle();

    const waiting = await manager.get('exec-late');
    expect(waiting.status).toBe(SagaStatus.Paused);
    expect(rows(waiting)).toEqual([['book', SagaStepStatus.PausedByOnExecute, false]]);
    expect(waiting.context.toJSON()).toEqual({ orderId: 'o-3' });
    expect(successes).toBe(0);

    answers.get(2)!.resolve({ bookingId: 'bk-2' });
    const execution = await running;

    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([['book', SagaStepStatus.Finished, false]]);
    expect(stepOf(execution, 'book').attempts).toBe(2);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-3', bookingId: 'bk-2' });
    expect(successes).toBe(1);
    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(seen).toEqual(['carrier.book', 'carrier.book']);
    await manager.close();
  });
});

describe('retries of 500 responses', () => {
  it('re-sends after the backoff, doubling it each time, and not before', async () => {
    const clock = new ManualClock();
    const calls: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      payment: {
        'payment.charge': (_content, info) => {
          calls.push(info);
          if (info.attempt < 3) throw new Error('database unavailable');
          return { chargeId: 'ch-3' };
        },
      },
    });
    const saga = new Saga<Booking>('charge-with-backoff')
      .remoteStep('charge')
      .onExecute(() => new SagaRequest('payment.charge', {}))
      .onSuccess(async (ctx, res) => {
        ctx.bookingId = (await res.content<{ chargeId: string }>()).chargeId;
      })
      .retry({ attempts: 3, backoffMs: 100 })
      .commit();
    const manager = managerWith({ broker, clock });
    const start = clock.now();

    const running = manager.run(saga, { context: { orderId: 'o-4' }, uuid: 'exec-backoff' });
    await until(() => calls.length === 1 && clock.pending === 1, 'attempt 1 failed and the backoff is armed');

    clock.advance(99);
    await settle();
    expect(calls).toHaveLength(1);
    clock.advance(1);
    await until(() => calls.length === 2, 'attempt 2 is sent after 100 ms');
    await until(() => clock.pending === 1, 'attempt 2 failed and the backoff is armed');

    clock.advance(199);
    await settle();
    expect(calls).toHaveLength(2);
    clock.advance(1);
    await until(() => calls.length === 3, 'attempt 3 is sent after 200 more ms');
    const execution = await running;

    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(new Set(calls.map((c) => c.requestId)).size).toBe(3);
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([['charge', SagaStepStatus.Finished, false]]);
    const charge = stepOf(execution, 'charge');
    expect(charge.attempts).toBe(3);
    expect(charge.error).toBeNull();
    expect(charge.finishedAt! - start).toBe(300);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-4', bookingId: 'ch-3' });
    expect(seen).toEqual(['payment.charge', 'payment.charge', 'payment.charge']);
    await manager.close();
  });

  it('fails the step (errored-by-on-execute) once the attempts are spent, and compensates the steps before it only', async () => {
    const clock = new ManualClock();
    const calls: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      inventory: { 'inventory.reserve': () => ({ id: 'r-5' }), 'inventory.release': () => ({ released: true }) },
      payment: {
        'payment.charge': (_content, info) => {
          calls.push(info);
          throw new Error('database unavailable');
        },
        'payment.refund': () => ({ refunded: true }),
      },
    });
    const saga = reserve(new Saga<Booking>('charge-fails'))
      .remoteStep('charge')
      .onExecute(() => new SagaRequest('payment.charge', {}))
      .onFailure(() => new SagaRequest('payment.refund', {}))
      .retry({ attempts: 2, backoffMs: 50 })
      .commit();
    const manager = managerWith({ broker, clock });

    const running = manager.run(saga, { context: { orderId: 'o-5' }, raiseOnError: false, uuid: 'exec-500' });
    await until(() => calls.length === 1 && clock.pending === 1, 'attempt 1 failed and the backoff is armed');
    clock.advance(49);
    await settle();
    expect(calls).toHaveLength(1);
    clock.advance(1);
    const execution = await running;

    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, true],
      ['charge', SagaStepStatus.ErroredByOnExecute, false],
    ]);
    const charge = stepOf(execution, 'charge');
    expect(charge.attempts).toBe(2);
    expect(charge.error?.code).toBe('SAGA_PARTICIPANT_SYSTEM_ERROR');
    expect(charge.compensation).toBeNull();
    expect(execution.error).toMatchObject({ step: 'charge', code: 'SAGA_PARTICIPANT_SYSTEM_ERROR' });
    expect(execution.errors.map((e) => [e.step, e.phase, e.code])).toEqual([['charge', 'execute', 'SAGA_PARTICIPANT_SYSTEM_ERROR']]);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-5', reservationId: 'r-5' });
    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(seen).toEqual(['inventory.reserve', 'payment.charge', 'payment.charge', 'inventory.release']);
    await manager.close();
  });
});

describe('retries of remote compensations', () => {
  it('retries a compensation answered with 500 after the backoff, until it succeeds', async () => {
    const clock = new ManualClock();
    const releases: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      inventory: {
        'inventory.reserve': () => ({ id: 'r-6' }),
        'inventory.release': (content, info) => {
          releases.push(info);
          if (info.attempt < 3) throw new Error('inventory database down');
          return { released: (content as { id: string }).id };
        },
      },
    });
    const saga = reserve(new Saga<Booking>('release-retried'))
      .retry({ attempts: 3, backoffMs: 100 })
      .localStep('fail')
      .onExecute(() => new Error('payment declined'))
      .commit();
    const manager = managerWith({ broker, clock });

    const running = manager.run(saga, { context: { orderId: 'o-6' }, raiseOnError: false, uuid: 'exec-comp-500' });
    await until(() => releases.length === 1 && clock.pending === 1, 'release attempt 1 failed and the backoff is armed');
    const paused = await manager.get('exec-comp-500');
    expect(stepOf(paused, 'reserve').status).toBe(SagaStepStatus.PausedOnFailure);
    clock.advance(99);
    await settle();
    expect(releases).toHaveLength(1);
    clock.advance(1);
    await until(() => releases.length === 2 && clock.pending === 1, 'release attempt 2 failed and the backoff is armed');
    clock.advance(199);
    await settle();
    expect(releases).toHaveLength(2);
    clock.advance(1);
    const execution = await running;

    expect(releases.map((r) => [r.phase, r.attempt])).toEqual([
      ['compensate', 1],
      ['compensate', 2],
      ['compensate', 3],
    ]);
    expect(new Set(releases.map((r) => r.requestId)).size).toBe(3);
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, true],
      ['fail', SagaStepStatus.ErroredOnExecute, false],
    ]);
    const compensation = stepOf(execution, 'reserve').compensation;
    expect(compensation?.attempts).toBe(3);
    expect(compensation?.error).toBeNull();
    expect(execution.error).toMatchObject({ step: 'fail', code: 'SAGA_HANDLER_FAILED' });
    expect(execution.errors.map((e) => [e.step, e.phase, e.code])).toEqual([['fail', 'execute', 'SAGA_HANDLER_FAILED']]);
    expect(seen).toEqual(['inventory.reserve', 'inventory.release', 'inventory.release', 'inventory.release']);
    await manager.close();
  });

  it('records a compensation whose 500s outlast its attempts as errored-on-failure', async () => {
    const clock = new ManualClock();
    const releases: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      inventory: {
        'inventory.reserve': () => ({ id: 'r-7' }),
        'inventory.release': (_content, info) => {
          releases.push(info);
          throw new Error('inventory database down');
        },
      },
    });
    const saga = reserve(new Saga<Booking>('release-gives-up'))
      .retry({ attempts: 2, backoffMs: 10 })
      .localStep('fail')
      .onExecute(() => new Error('payment declined'))
      .commit();
    const manager = managerWith({ broker, clock });

    const running = manager.run(saga, { context: { orderId: 'o-7' }, raiseOnError: false, uuid: 'exec-comp-gives-up' });
    await until(() => releases.length === 1 && clock.pending === 1, 'release attempt 1 failed and the backoff is armed');
    clock.advance(10);
    const execution = await running;

    expect(releases.map((r) => r.attempt)).toEqual([1, 2]);
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.ErroredOnFailure, false],
      ['fail', SagaStepStatus.ErroredOnExecute, false],
    ]);
    expect(stepOf(execution, 'reserve').compensation).toMatchObject({ attempts: 2, error: { code: 'SAGA_PARTICIPANT_SYSTEM_ERROR' } });
    expect(execution.errors.map((e) => [e.step, e.phase, e.code])).toEqual([
      ['reserve', 'compensate', 'SAGA_PARTICIPANT_SYSTEM_ERROR'],
      ['fail', 'execute', 'SAGA_HANDLER_FAILED'],
    ]);
    expect(seen).toEqual(['inventory.reserve', 'inventory.release', 'inventory.release']);
    await manager.close();
  });

  it('retries a compensation that timed out', async () => {
    const clock = new ManualClock();
    const releases: ParticipantRequestInfo[] = [];
    const { broker, seen } = recordingBroker({
      inventory: {
        'inventory.reserve': () => ({ id: 'r-8' }),
        'inventory.release': (_content, info) => {
          releases.push(info);
          return info.attempt === 1 ? never() : { released: true };
        },
      },
    });
    const saga = reserve(new Saga<Booking>('release-times-out'))
      .timeout(500)
      .retry({ attempts: 2 })
      .localStep('fail')
      .onExecute(() => new Error('payment declined'))
      .commit();
    const manager = managerWith({ broker, clock });

    const running = manager.run(saga, { context: { orderId: 'o-8' }, raiseOnError: false, uuid: 'exec-comp-timeout' });
    await until(() => releases.length === 1, 'release attempt 1 is sent');
    clock.advance(499);
    await settle();
    expect(releases).toHaveLength(1);
    clock.advance(1);
    const execution = await running;

    expect(releases.map((r) => [r.phase, r.attempt])).toEqual([
      ['compensate', 1],
      ['compensate', 2],
    ]);
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, true],
      ['fail', SagaStepStatus.ErroredOnExecute, false],
    ]);
    expect(stepOf(execution, 'reserve').compensation).toMatchObject({ attempts: 2, error: null });
    expect(seen).toEqual(['inventory.reserve', 'inventory.release', 'inventory.release']);
    await manager.close();
  });
});
