// The workload's saga (bench/lib/workload.ts) with each step at its own service, so that
// instances of the cluster benchmark (bench/cluster.ts) route requests for services connected
// elsewhere: reserve at inventory (undo: release), charge at payment (undo: refund), ship at shipping.
import { Saga } from '../../src/index.js';
import { step } from './bench-saga.js';

export const CLUSTER_SERVICES = ['inventory', 'payment', 'shipping'] as const;
export const CLUSTER_AUTH: Record<string, string> = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, `${s}-bench-token`]));

/** Without the two-phase commit, as BENCH_SAGA: 3 requests per saga, 5 when it fails at ship. */
export const CLUSTER_SAGA = step('ship', 'shipping.ship')(step('charge', 'payment.charge', 'payment.refund')(step('reserve', 'inventory.reserve', 'inventory.release')(new Saga('bench-cluster', { twoPhaseCommit: false })))).commit();
