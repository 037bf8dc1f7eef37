import { Saga, SagaRequest, type SagaOptions } from '../../src/index.js';

/** What the WebSocket tests' orders carry. */
export interface Order {
  orderId: string;
  reservationId?: string;
  chargeId?: string;
  [key: string]: unknown;
}

/** inventory.reserve (compensated by inventory.release), then payment.charge: the order saga of the WebSocket tests. */
export function orderSaga(name: string, options: SagaOptions<Order> = {}): Saga<Order> {
  return new Saga<Order>(name, options)
    .remoteStep('reserve')
    .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId }))
    .onSuccess(async (ctx, res) => {
      ctx.reservationId = (await res.content<{ id: string }>()).id;
    })
    .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId ?? null }))
    .remoteStep('charge')
    .onExecute((ctx) => new SagaRequest('payment.charge', { orderId: ctx.orderId }))
    .onSuccess(async (ctx, res) => {
      ctx.chargeId = (await res.content<{ id: string }>()).id;
    })
    .commit();
}
