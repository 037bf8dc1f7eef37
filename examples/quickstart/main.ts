// A complete saga in one file: run it with `npx tsx examples/quickstart/main.ts`.
import { InProcessBroker, Saga, SagaBusinessError, SagaManager, SagaRequest } from '../../src/index.js';

// Participants: in this process here; over WebSocket in examples/order-saga.
const broker = new InProcessBroker();
broker.participant('inventory', {
  'inventory.reserve': () => ({ id: 'res-42' }),
  'inventory.release': ({ id }: any) => console.log(`  inventory: released ${id}`),
});
broker.participant('payment', {
  'payment.charge': ({ amount }: any) => {
    if (amount > 100) throw new SagaBusinessError('card declined'); // → 400
    return { chargeId: 'ch-1' };
  },
});

const CREATE_ORDER = new Saga('create-order')
  .localStep('validate')
  .onExecute((ctx) => {
    if (!Array.isArray(ctx.items) || ctx.items.length === 0) return new Error('no items');
  })
  .remoteStep('reserve-stock')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { items: ctx.items as string[] }))
  .onSuccess(async (ctx, res) => {
    ctx.reservationId = (await res.content<{ id: string }>()).id;
  })
  .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId as string }))
  .remoteStep('charge')
  .onExecute((ctx) => new SagaRequest('payment.charge', { amount: ctx.amount as number }))
  .commit();

const manager = new SagaManager({ broker, sagas: [CREATE_ORDER] });
console.log(`saga ${CREATE_ORDER.id}`);

const ok = await manager.run(CREATE_ORDER, { context: { items: ['book'], amount: 30 } });
console.log(ok.status, ok.context.toJSON());

const failed = await manager.run(CREATE_ORDER, { context: { items: ['piano'], amount: 5000 }, raiseOnError: false });
console.log(failed.status, failed.error?.code, failed.steps.map((s) => `${s.name}: ${s.status}${s.compensated ? ' (compensated)' : ''}`));

await manager.close();
