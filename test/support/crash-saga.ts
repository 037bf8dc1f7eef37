import { Saga, SagaRequest, type StepPhase, type TransactionPhase } from '../../src/index.js';

/**
 * The saga of the crash test (test/chaos/crash-recovery.test.ts), shared by the orchestrator
 * child process, the participants child process and the test that reads the outcome: three remote
 * steps, each with a compensation; the third is refused (400) for one order in five.
 */
export interface CrashOrder extends Record<string, unknown> {
  index: number;
  orderId: string;
  reservationId?: string;
  chargeId?: string;
}

export const CRASH_SERVICES = ['inventory', 'payment', 'shipping'] as const;
export type CrashService = (typeof CRASH_SERVICES)[number];

/** Step names in saga order, with the service each one talks to. */
export const CRASH_STEPS = [
  { step: 'reserve', service: 'inventory', execute: 'inventory.reserve', compensate: 'inventory.release' },
  { step: 'charge', service: 'payment', execute: 'payment.charge', compensate: 'payment.refund' },
  { step: 'ship', service: 'shipping', execute: 'shipping.book', compensate: 'shipping.cancel' },
] as const;

/** Whether order `index` is refused at the third step: exactly 20% of them, spread evenly. */
export function failsAt(index: number): boolean {
  return index % 5 === 3;
}

export const crashUuid = (index: number): string => `crash-${index}`;

/** A line of a participant's ledger: one handler execution. */
export interface LedgerEntry {
  requestId: string;
  uuid: string;
  step: string;
  phase: StepPhase;
  attempt: number;
  action: string;
  index: number;
  outcome: 'ok' | 'refused';
}

/** A line of a participant's transaction ledger: one run of a two-phase-commit hook. */
export interface TransactionLedgerEntry {
  uuid: string;
  service: string;
  phase: TransactionPhase;
  attempt: number;
}

export const CRASH_SAGA = new Saga<CrashOrder>('crash-order')
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { index: ctx.index, orderId: ctx.orderId }))
  .onSuccess(async (ctx, res) => {
    ctx.reservationId = (await res.content<{ reservationId: string }>()).reservationId;
  })
  .onFailure((ctx) => new SagaRequest('inventory.release', { index: ctx.index, reservationId: ctx.reservationId ?? null }))
  .remoteStep('charge')
  .onExecute((ctx) => new SagaRequest('payment.charge', { index: ctx.index, orderId: ctx.orderId }))
  .onSuccess(async (ctx, res) => {
    ctx.chargeId = (await res.content<{ chargeId: string }>()).chargeId;
  })
  .onFailure((ctx) => new SagaRequest('payment.refund', { index: ctx.index, chargeId: ctx.chargeId ?? null }))
  .remoteStep('ship')
  .onExecute((ctx) => new SagaRequest('shipping.book', { index: ctx.index, orderId: ctx.orderId }))
  .onFailure((ctx) => new SagaRequest('shipping.cancel', { index: ctx.index }))
  .commit();
