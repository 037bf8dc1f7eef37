import { Saga, SagaRequest, type SagaOptions, type StepPhase, type TransactionPhase } from '../../src/index.js';

/**
 * What the sagas of test/integration/websocket-transactions.test.ts share with their child
 * processes (test/support/tx-participants.ts, tx-orchestrator.ts): three remote steps, one per
 * service, each with a compensation, and a plan carried in the context that tells the participants
 * how to behave for this execution (every request carries it; the participants remember it by
 * execution id, which is also the transaction id their two-phase-commit hooks get).
 */
export const TX_SERVICES = ['inventory', 'payment', 'shipping'] as const;
/** A service that takes part only as a `relatedServices` entry of inventory's answer (plan.related). */
export const TX_RELATED = 'audit';
export const TX_ALL_SERVICES = [...TX_SERVICES, TX_RELATED] as const;
export type TxService = (typeof TX_ALL_SERVICES)[number];

/** Steps in saga order, and the service each one talks to (`<service>.do`, compensated by `<service>.undo`). */
export const TX_STEPS = [
  { step: 'reserve-stock', service: 'inventory' },
  { step: 'charge', service: 'payment' },
  { step: 'ship', service: 'shipping' },
] as const;

/** How the participants behave for one execution. Every field is optional; none: all goes well. */
export interface TxPlan {
  /** inventory's answer names these services in `relatedServices`. */
  related?: string[];
  /** This service's step answers 400. */
  refuseExecute?: string;
  /** This service's step does not answer its first `attempts` attempts (an operator may retry it). */
  hangExecute?: { service: string; attempts: number };
  /** This service's compensation answers 400 its first `times` runs. */
  failCompensation?: { service: string; times: number };
  /** This service votes no: `false` returns false from onReserve, `throw` throws a SagaBusinessError with a reason. */
  /** `false`: onReserve returns false; `throw`: a SagaBusinessError; `crash`: any other error (the hook failed). */
  voteNo?: { service: string; how: 'false' | 'throw' | 'crash' };
  /** This service's onReserve sleeps `ms` before voting yes. */
  slowReserve?: { service: string; ms: number };
  /** This service's onCommit throws its first `times` runs. */
  failCommit?: { service: string; times: number };
  /** This service's onCommit sleeps `ms` in its first `times` runs before committing. */
  lateCommit?: { service: string; ms: number; times: number };
}

export interface TxOrder extends Record<string, unknown> {
  order: string;
  plan: TxPlan;
}

/** A line of the participants' ledger (`LEDGER {json}`): one run of a handler or a hook, in the order they ran. */
export type TxLedgerEntry =
  | {
      kind: 'handler';
      uuid: string;
      service: string;
      target: string;
      phase: StepPhase;
      attempt: number;
      requestId: string;
      outcome: 'ok' | 'refused' | 'hung' | 'failed';
    }
  | {
      kind: 'hook';
      uuid: string;
      service: string;
      phase: TransactionPhase;
      attempt: number;
      requestId: string;
      /** reserve: `yes` / `no`; commit, reject: `applied` (the effect was made), `already` (it was made before), `failed` (the hook threw). */
      outcome: 'yes' | 'no' | 'applied' | 'already' | 'failed';
      /** How long the hook took, in ms. */
      ms: number;
    };

/** The saga of these tests; `name` keeps definitions with different commit options apart. */
export function txSaga(name: string, options: Omit<SagaOptions<TxOrder>, 'context'> = {}): Saga<TxOrder> {
  const content = (ctx: { order: string; plan: TxPlan }) => ({ order: ctx.order, plan: ctx.plan as never });
  return new Saga<TxOrder>(name, options)
    .remoteStep('reserve-stock')
    .onExecute((ctx) => new SagaRequest('inventory.do', content(ctx)))
    .onSuccess(async (ctx, res) => {
      ctx.inventoryRef = (await res.content<{ ref: string }>()).ref;
    })
    .onFailure((ctx) => new SagaRequest('inventory.undo', content(ctx)))
    .remoteStep('charge')
    .onExecute((ctx) => new SagaRequest('payment.do', content(ctx)))
    .onSuccess(async (ctx, res) => {
      ctx.paymentRef = (await res.content<{ ref: string }>()).ref;
    })
    .onFailure((ctx) => new SagaRequest('payment.undo', content(ctx)))
    .remoteStep('ship')
    .onExecute((ctx) => new SagaRequest('shipping.do', content(ctx)))
    .onFailure((ctx) => new SagaRequest('shipping.undo', content(ctx)))
    .commit();
}

/** The saga the orchestrator child of the crash tests runs (tx-orchestrator.ts). */
export const TX_CRASH_SAGA = txSaga('tx-crash', { commitTimeoutMs: 3_000, commitRetryBackoffMs: 50 });
