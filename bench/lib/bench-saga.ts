// The workload's saga as a sagachart definition: 3 remote steps, the first two compensable.
import { Saga, SagaRequest } from '../../src/index.js';
import { requestContent } from './workload.js';

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

/** reserve (undo: release), charge (undo: refund), ship; context `{ ...initialState, i, fail }`. */
export const BENCH_SAGA = step('ship', 'svc.ship')(step('charge', 'svc.charge', 'svc.refund')(step('reserve', 'svc.reserve', 'svc.release')(new Saga('bench')))).commit();
