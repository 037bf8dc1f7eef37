// The saga of the multi-process cluster test (test/integration/cluster-processes.test.ts):
// reserve (inventory) → charge (payment, which declines some) → ship (shipping); a declined charge
// rolls back the reserve.
import { Saga, SagaRequest } from '../../src/index.js';

export interface ClusterOrder {
  n: number;
  /** payment declines the charge: the saga ends errored, its reserve released. */
  decline?: boolean;
  /** payment holds the charge until told: the execution waits (for operator actions). */
  hang?: boolean;
}

export const CLUSTER_ORDER = new Saga<ClusterOrder>('cluster-process-order')
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { n: ctx.n }))
  .onFailure((ctx) => new SagaRequest('inventory.release', { n: ctx.n }))
  .remoteStep('charge')
  .onExecute((ctx) => new SagaRequest('payment.charge', { n: ctx.n, decline: ctx.decline === true, hang: ctx.hang === true }))
  .onFailure((ctx) => new SagaRequest('payment.refund', { n: ctx.n }))
  .remoteStep('ship')
  .onExecute((ctx) => new SagaRequest('shipping.ship', { n: ctx.n }))
  .onFailure((ctx) => new SagaRequest('shipping.cancel', { n: ctx.n }))
  .commit();

export const CLUSTER_TOKENS = { inventory: 'inventory-token', payment: 'payment-token', shipping: 'shipping-token' } as const;
export type ClusterService = keyof typeof CLUSTER_TOKENS;
