/**
 * Faults of adapters and hostile answers end in a defined state with a clear error, never a hang:
 * a broker that throws, answers that cannot be stored, contexts that are not JSON; and ignored
 * responses are counted, foreign ones as warnings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  isTransactionPhase,
  InMemorySagaRepository,
  Saga,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  type OutgoingRequest,
  type SagaBroker,
  type ResponseListener,
} from '../../src/index.js';
import { closeManagers, collectingLogger, ManualBroker, managerWith, rows, stepOf, until } from '../support/harness.js';

afterEach(closeManagers);

const ORDER = new Saga('faults')
  .localStep('validate')
  .onExecute((ctx) => {
    ctx.validated = true;
  })
  .onFailure((ctx) => {
    ctx.unvalidated = true;
  })
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.reserve', {}))
  .onFailure(() => new SagaRequest('inventory.release', {}))
  .retry({ attempts: 2 })
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .commit();

/** A broker whose send() throws for chosen targets (it should queue and retry instead); every service acknowledges the two-phase commit's messages. */
class ThrowingBroker implements SagaBroker {
  readonly sent: OutgoingRequest[] = [];
  listener: ResponseListener | undefined;
  constructor(readonly failing: (request: OutgoingRequest) => boolean) {}
  attach(listener: ResponseListener): void {
    this.listener = listener;
  }
  send(request: OutgoingRequest): void {
    if (this.failing(request)) throw new Error('socket closed under me');
    if (isTransactionPhase(request.phase)) {
      setImmediate(() => this.listener?.({ requestId: request.requestId, status: 200, content: {}, relatedServices: [] }));
      return;
    }
    this.sent.push(request);
  }
  async close(): Promise<void> {}
}

describe('a broker that throws in send()', () => {
  it('fails the attempt like a 500 (SAGA_BROKER_FAILED): retried, then the step fails and the saga rolls back and ends', async () => {
    const logger = collectingLogger();
    const broker = new ThrowingBroker((r) => r.target === 'inventory.reserve');
    const manager = managerWith({ broker, logger });
    // With pauseOnDisk, run() answers with what the failed sends led to, as minos does: the step
    // has failed (the execution waits on the reject of its transaction), and raiseOnError throws.
    const first = await manager.run(ORDER, { pauseOnDisk: true, raiseOnError: false });
    expect(first.error).toMatchObject({ step: 'reserve', code: 'SAGA_BROKER_FAILED' });
    expect(stepOf(first, 'reserve').status).toBe(SagaStepStatus.ErroredByOnExecute);
    const thrown = await manager.run(ORDER, { pauseOnDisk: true }).catch((err: unknown) => err);
    expect(thrown).toMatchObject({ code: 'SAGA_FAILED_EXECUTION', execution: { error: { code: 'SAGA_BROKER_FAILED' } } });
    const done = first.status === SagaStatus.Errored ? first : await manager.waitFor(first.uuid, { timeoutMs: 5_000 });
    expect(done.status).toBe(SagaStatus.Errored);
    expect(stepOf(done, 'reserve')).toMatchObject({ status: SagaStepStatus.ErroredByOnExecute, attempts: 2 });
    expect(stepOf(done, 'reserve').error?.code).toBe('SAGA_BROKER_FAILED');
    expect(stepOf(done, 'reserve').error?.message).toContain('socket closed under me');
    expect(rows(done)).toEqual([
      ['validate', SagaStepStatus.Finished, true],
      ['reserve', SagaStepStatus.ErroredByOnExecute, false],
      ['charge', SagaStepStatus.Created, false],
    ]);
    expect(manager.liveCount).toBe(0);
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('the broker failed to send'))).toBe(true);
  });

  it('a compensation the broker cannot send is recorded as failed, and the saga still ends', async () => {
    const broker = new ThrowingBroker((r) => r.target === 'inventory.release');
    const manager = managerWith({ broker, logger: collectingLogger() });
    const running = manager.run(ORDER, { raiseOnError: false });
    await until(() => broker.sent.length === 1, 'reserve is sent');
    broker.listener!({ requestId: broker.sent[0]!.requestId, status: 200, content: {}, relatedServices: [] });
    await until(() => broker.sent.length === 2, 'charge is sent');
    broker.listener!({ requestId: broker.sent[1]!.requestId, status: 400, content: { declined: true }, relatedServices: [] });
    const done = await running;
    expect(done.status).toBe(SagaStatus.Errored);
    expect(stepOf(done, 'reserve').compensation?.error?.code).toBe('SAGA_BROKER_FAILED');
    expect(stepOf(done, 'reserve').status).toBe(SagaStepStatus.ErroredOnFailure);
  });
});

describe('answers that cannot be taken as they are', () => {
  it('content nested thousands of levels deep fails the attempt with SAGA_RESPONSE_INVALID; the error stays short', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const running = manager.run(ORDER, { raiseOnError: false });
    const deep = Array.from({ length: 5_000 }).reduce<unknown>((inner) => [inner], 'x');
    await until(() => broker.requests.length === 1, 'attempt 1 sent');
    broker.deliver({ requestId: broker.requests[0]!.requestId, status: 500, content: deep as never, relatedServices: [] });
    await until(() => broker.requests.length === 2, 'attempt 2 sent');
    broker.deliver({ requestId: broker.requests[1]!.requestId, status: 200, content: deep as never, relatedServices: [] });
    const done = await running;
    expect(done.status).toBe(SagaStatus.Errored);
    const error = stepOf(done, 'reserve').error!;
    expect(error.code).toBe('SAGA_RESPONSE_INVALID');
    expect(error.message).toContain('nested deeper than 64 levels');
    expect(error.message.length).toBeLessThan(300);
  });

  it('a 400 with a huge body is recorded with a preview of it, not the whole body', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: collectingLogger() });
    const running = manager.run(ORDER, { raiseOnError: false });
    await until(() => broker.requests.length === 1, 'reserve sent');
    broker.answer(broker.requests[0]!, 400, { reason: 'r'.repeat(500_000) });
    const done = await running;
    expect(stepOf(done, 'reserve').error?.code).toBe('SAGA_PARTICIPANT_REJECTED');
    expect(stepOf(done, 'reserve').error!.message.length).toBeLessThan(400);
  });
});

describe('contexts that are not JSON', () => {
  it('a Map or a Set written by a handler fails its step with SAGA_CONTEXT_NOT_JSON rather than being stored as {}', async () => {
    const saga = new Saga('with-a-map')
      .localStep('collect')
      .onExecute((ctx) => {
        ctx.seen = new Set(['a']);
      })
      .commit();
    const manager = managerWith({ logger: collectingLogger() });
    const done = await manager.run(saga, { raiseOnError: false });
    expect(done.status).toBe(SagaStatus.Errored);
    expect(stepOf(done, 'collect').error).toMatchObject({ code: 'SAGA_CONTEXT_NOT_JSON' });
    expect(stepOf(done, 'collect').error!.message).toContain('"seen": a Set is not JSON');
    await expect(manager.run(saga, { context: { m: new Map() } })).rejects.toMatchObject({ code: 'SAGA_CONTEXT_INVALID' });
  });
});

describe('ignored responses are counted, foreign ones are warnings', () => {
  it('duplicate, late and foreign', async () => {
    const logger = collectingLogger();
    const broker = new ManualBroker();
    const repository = new InMemorySagaRepository();
    const manager = managerWith({ broker, repository, logger });
    const paused = await manager.run(ORDER, { pauseOnDisk: true });
    const reserve = broker.requests[0]!;
    broker.answer(reserve, 200);
    await until(() => broker.requests.length === 2, 'charge sent');
    broker.answer(reserve, 200); // again: a duplicate
    const charge = broker.requests[1]!;
    broker.answer({ ...charge, requestId: `${paused.uuid}/execute/1/no-such-step` }, 200); // a step it never ran: foreign
    broker.answer({ ...charge, requestId: 'not-a-request-id' }, 200); // foreign
    broker.answer({ ...charge, requestId: `00000000-0000-0000-0000-000000000000/execute/1/charge` }, 200); // no such execution: foreign
    await until(() => manager.stats().ignoredResponses.duplicate === 1 && manager.stats().ignoredResponses.foreign === 3, 'the ignored ones are counted');
    broker.answer(charge, 200);
    expect((await manager.waitFor(paused.uuid)).status).toBe(SagaStatus.Finished);
    broker.answer(charge, 200); // after the end: late
    await until(() => manager.stats().ignoredResponses.late === 1, 'the late one is counted');
    expect(manager.stats().ignoredResponses).toEqual({ duplicate: 1, late: 1, foreign: 3 });
    const warnings = logger.lines.filter((l) => l.level === 'warn');
    // Foreign ones are warnings, at most one a second (the others are counted in the next line).
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.every((l) => /foreign|unknown request id/.test(l.message))).toBe(true);
    expect(logger.lines.some((l) => l.level === 'info' && l.message === 'ignored a duplicate response')).toBe(true);
    expect(logger.lines.some((l) => l.level === 'info' && l.message === 'ignored a late response')).toBe(true);
  });
});
