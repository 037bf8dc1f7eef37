import { Saga, SagaRequest } from '../../src/index.js';

/** The demo's step timeouts can be stretched (DEMO_TIMEOUT_SCALE=3) where the machine is loaded, as in its test. */
const scale = Number(process.env.DEMO_TIMEOUT_SCALE ?? 1) || 1;
const ms = (n: number) => Math.round(n * scale);

/** What one order carries through the saga. */
export interface Order extends Record<string, unknown> {
  orderId: string;
  customer: string;
  items: Array<{ sku: string; qty: number }>;
  amount: number;
  express: boolean;
  reservationId?: string;
  chargeId?: string;
  trackingId?: string;
}

const EXPRESS_SHIPPING = new Saga('express-shipping')
  .remoteStep('book-courier')
  .onExecute((ctx) => new SagaRequest('shipping.express', { orderId: ctx.orderId as string }))
  .onSuccess(async (ctx, res) => {
    ctx.trackingId = (await res.content<{ trackingId: string }>()).trackingId;
  })
  .onFailure((ctx) => new SagaRequest('shipping.cancel', { orderId: ctx.orderId as string }))
  .timeout(ms(1_000))
  .commit();

const STANDARD_SHIPPING = new Saga('standard-shipping')
  .remoteStep('schedule')
  .onExecute((ctx) => new SagaRequest('shipping.standard', { orderId: ctx.orderId as string }))
  .onSuccess(async (ctx, res) => {
    ctx.trackingId = (await res.content<{ trackingId: string }>()).trackingId;
  })
  .onFailure((ctx) => new SagaRequest('shipping.cancel', { orderId: ctx.orderId as string }))
  .commit();

/** The order saga: validate, reserve stock, charge, ship (express or standard), confirm. */
export const ORDER_SAGA = new Saga<Order>('order')
  .localStep('validate')
  .onExecute((ctx) => {
    if (ctx.items.length === 0) return new Error(`order ${ctx.orderId} has no items`);
  })
  .remoteStep('reserve-stock')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId, items: ctx.items }))
  .onSuccess(async (ctx, res) => {
    ctx.reservationId = (await res.content<{ reservationId: string }>()).reservationId;
  })
  .onFailure((ctx) => new SagaRequest('inventory.release', { reservationId: ctx.reservationId ?? null }))
  .timeout(ms(2_000))
  .retry({ attempts: 2, backoffMs: 50 })
  .remoteStep('charge')
  .onExecute((ctx) => new SagaRequest('payment.charge', { orderId: ctx.orderId, customer: ctx.customer, amount: ctx.amount }))
  .onSuccess(async (ctx, res) => {
    ctx.chargeId = (await res.content<{ chargeId: string }>()).chargeId;
  })
  .onFailure((ctx) => new SagaRequest('payment.refund', { chargeId: ctx.chargeId ?? null }))
  .timeout(ms(2_000))
  .conditionalStep('shipping')
  .ifThen((ctx) => ctx.express, EXPRESS_SHIPPING)
  .elseThen(STANDARD_SHIPPING)
  .commit((ctx) => {
    ctx.confirmed = true;
  });
