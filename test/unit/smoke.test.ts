import { describe, expect, it } from 'vitest';
import { Saga, SagaManager, SagaRequest, SagaStatus } from '../../src/index.js';
import { recordingBroker } from '../support/harness.js';

describe('a first saga', () => {
  it('finishes and its participant sees the request', async () => {
    const { broker, seen } = recordingBroker({ inventory: { 'inventory.reserve': () => ({ id: 'r-1' }) } });
    const saga = new Saga('first')
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('inventory.reserve', {}))
      .onSuccess(async (ctx, res) => {
        ctx.id = (await res.content<{ id: string }>()).id;
      })
      .commit();
    const manager = new SagaManager({ broker, sagas: [saga] });
    const execution = await manager.run(saga);
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.id).toBe('r-1');
    expect(seen).toEqual(['inventory.reserve']);
    await manager.close();
  });
});
