// The workload's saga as a sagachart definition: 3 remote steps, the first two compensable.
import { Saga, SagaRequest } from '../../src/index.js';
import { requestContent } from './workload.js';

/** A remote step of the workload: `target` asked with the workload's content, `undo` its compensation. */
export const step = (name: string, target: string, undo?: string) => (saga: Saga<Record<string, unknown>>) => {
  const s = saga
    .remoteStep(name)
    .onExecute((ctx) => new SagaRequest(target, requestContent(ctx.i as number, name, ctx.fail as boolean)))
    .onSuccess((ctx) => {
      ctx[name] = 'done';
    });
  if (undo) s.onFailure((ctx) => new SagaRequest(undo, requestContent(ctx.i as number, `${name}-undo`, ctx.fail as boolean)));
  return saga;
};

/**
 * reserve (undo: release), charge (undo: refund), ship; context `{ ...initialState, i, fail }`.
 * Without the two-phase commit: the other contenders run the steps only, so the comparison is of
 * the same work (the commit adds one round trip per phase to every service that took part).
 */
export const BENCH_SAGA = step('ship', 'svc.ship')(step('charge', 'svc.charge', 'svc.refund')(step('reserve', 'svc.reserve', 'svc.release')(new Saga('bench', { twoPhaseCommit: false })))).commit();

/** The same saga with the two-phase commit: reserve, then commit (or reject), with the one service `svc`. */
export const BENCH_SAGA_2PC = step('ship', 'svc.ship')(step('charge', 'svc.charge', 'svc.refund')(step('reserve', 'svc.reserve', 'svc.release')(new Saga('bench-2pc')))).commit();
