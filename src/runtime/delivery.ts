import type { SagaMachineEvent } from '../../machines/types.js';
import type { SagaRecord } from '../repositories/saga-repository.js';
import type { SagaTimer } from '../messages/saga-timer.js';

/** An event on its way into an execution: what decides whether it applies. */
export type Delivery =
  /** A participant's response: applies while the execution waits for exactly this request. */
  | { kind: 'response'; requestId: string; event: SagaMachineEvent }
  /** A commit decision or an operator event: applies when the chart would take it now. */
  | { kind: 'decision'; event: SagaMachineEvent }
  /** The execution's deadline fired: applies when it is due. */
  | { kind: 'deadline' };

/** A delivery that does not apply now, and, for a deadline not due yet, when to try again. */
export interface Refusal {
  why: string;
  rearmAt?: number;
}

/** What an execution in memory answers about a delivery. */
export interface DeliveryTarget {
  awaits(requestId: string): boolean;
  can(event: SagaMachineEvent): boolean;
  timer(): SagaTimer | null;
}

export const DEADLINE: Delivery = { kind: 'deadline' };

const NOT_AWAITED = 'it waits for no such request';
const NO_DEADLINE = 'it waits on no deadline';
const NOT_DUE = 'its deadline is not due yet';

/** What a delivery is, for logs. */
export const whatOf = (delivery: Delivery): string =>
  delivery.kind === 'response' ? `saga.response ${delivery.requestId}` : delivery.kind === 'decision' ? delivery.event.type : 'saga.deadline';

/** Refuses a delivery from the stored record alone, before anything is restored; `null` when it may apply. */
export function refusalOf(delivery: Delivery, record: SagaRecord, now: number): Refusal | null {
  if (delivery.kind === 'response') return record.outbox.some((r) => r.requestId === delivery.requestId) ? null : { why: NOT_AWAITED };
  if (delivery.kind === 'deadline') return dueOrNot(record.timer, now);
  return null;
}

/** The event a delivery steps the execution with, or why it does not apply now. */
export function eventOf(delivery: Delivery, execution: DeliveryTarget, now: number): SagaMachineEvent | Refusal {
  if (delivery.kind === 'response') return execution.awaits(delivery.requestId) ? delivery.event : { why: NOT_AWAITED };
  if (delivery.kind === 'decision') return execution.can(delivery.event) ? delivery.event : { why: 'the chart does not take it in this state' };
  const timer = execution.timer();
  return dueOrNot(timer, now) ?? timer!.event;
}

function dueOrNot(timer: SagaTimer | null, now: number): Refusal | null {
  if (!timer) return { why: NO_DEADLINE };
  if (timer.at > now) return { why: NOT_DUE, rearmAt: timer.at };
  return null;
}
