// The workload's saga (bench/lib/workload.ts) with each step at its own service, so that
// instances of the cluster benchmark (bench/cluster.ts) route requests for services connected
// elsewhere: reserve at inventory (undo: release), charge at payment (undo: refund), ship at shipping.
import { Saga, SagaRequest } from '../../src/index.js';
import { requestContent } from './workload.js';

export const CLUSTER_SERVICES = ['inventory', 'payment', 'shipping'] as const;
export const CLUSTER_AUTH: Record<string, string> = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, `${s}-bench-token`]));

const step = (name: string, target: string, undo?: string) => (saga: Saga<Record<string, unknown>>) => {
  const s = saga
    .remoteStep(name)
    .onExecute((ctx) => new SagaRequest(target, requestContent(ctx.i as number, name, ctx.fail as boolean)))
    .onSuccess((ctx) => {
      ctx[name] = 'done';
    });
  if (undo) s.onFailure((ctx) => new SagaRequest(undo, requestContent(ctx.i as number, `${name}-undo`, ctx.fail as boolean)));
  return saga;
};

/** Without the two-phase commit, as BENCH_SAGA: 3 requests per saga, 5 when it fails at ship. */
export const CLUSTER_SAGA = step('ship', 'shipping.ship')(step('charge', 'payment.charge', 'payment.refund')(step('reserve', 'inventory.reserve', 'inventory.release')(new Saga('bench-cluster', { twoPhaseCommit: false })))).commit();
