/**
 * A copy of an execution held in memory by one manager while another moved it on (an
 * orchestrator of a cluster whose lease lapsed for a moment, and the one that took over): an
 * answer the stale copy does not expect is checked against the repository, not ignored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InMemorySagaRepository, Saga, SagaRequest, SagaStatus } from '../../src/index.js';
import { closeManagers, collectingLogger, ManualBroker, managerWith, until } from '../support/harness.js';

afterEach(closeManagers);

const TWO_STEPS = new Saga('stale-copy')
  .remoteStep('first')
  .onExecute(() => new SagaRequest('svc.first', {}))
  .remoteStep('second')
  .onExecute(() => new SagaRequest('svc.second', {}))
  .commit();

describe('a live copy behind the repository', () => {
  it('applies an answer it did not expect once the repository shows it moved on, and its run() ends', async () => {
    const repository = new InMemorySagaRepository();
    const aBroker = new ManualBroker();
    const bBroker = new ManualBroker();
    const a = managerWith({ repository, broker: aBroker, sagas: [TWO_STEPS], logger: collectingLogger(), recoverIntervalMs: 0 });
    const b = managerWith({ repository, broker: bBroker, sagas: [TWO_STEPS], logger: collectingLogger(), recoverIntervalMs: 0 });
    const running = a.run(TWO_STEPS);
    await until(() => aBroker.requests.length === 1, 'first sent by a');
    expect(a.liveCount).toBe(1);
    // b takes the answer to the first step, and sends the second.
    await b.resume({ requestId: aBroker.requests[0]!.requestId, status: 200, content: {}, relatedServices: [] });
    await until(() => bBroker.requests.length === 1, 'second sent by b');
    // The answer to the second comes to a, whose copy still waits on the first.
    aBroker.answer(bBroker.requests[0]!);
    const done = await running;
    expect(done.status).toBe(SagaStatus.Finished);
    expect(a.stats().ignoredResponses).toEqual({ duplicate: 0, late: 0, foreign: 0 });
  });

  it('still ignores a duplicate answer without moving anything', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, sagas: [TWO_STEPS], logger: collectingLogger(), recoverIntervalMs: 0 });
    const running = manager.run(TWO_STEPS);
    await until(() => broker.requests.length === 1, 'first sent');
    broker.answer(broker.requests[0]!);
    await until(() => broker.requests.length === 2, 'second sent');
    broker.answer(broker.requests[0]!);
    broker.answer(broker.requests[1]!);
    expect((await running).status).toBe(SagaStatus.Finished);
    expect(manager.stats().ignoredResponses.duplicate).toBe(1);
  });
});
