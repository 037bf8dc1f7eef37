/** The phases of the two-phase commit of the participants' transactions. */
export type TransactionPhase = 'reserve' | 'commit' | 'reject';

/**
 * Which part of an execution a request belongs to: a step's request (`execute`), its
 * compensation (`compensate`), or one phase of the commit of the participants' transactions.
 */
export type StepPhase = 'execute' | 'compensate' | TransactionPhase;

/** Whether a phase is one of the two-phase commit's. */
export function isTransactionPhase(phase: string): phase is TransactionPhase {
  return phase === 'reserve' || phase === 'commit' || phase === 'reject';
}

/** The parts of a request id. */
export interface RequestKey {
  uuid: string;
  step: string;
  phase: StepPhase;
  attempt: number;
}

/**
 * A request id is stable across re-sends of the same attempt (participants deduplicate on it) and
 * new for each retry: `uuid/phase/attempt/step-path`. The step path goes last because it may hold
 * slashes (`shipping/express/arrange`).
 */
export function formatRequestId(key: RequestKey): string {
  return `${key.uuid}/${key.phase}/${key.attempt}/${key.step}`;
}

/** Parses a request id made by {@link formatRequestId}; `null` when it is not one. */
export function parseRequestId(requestId: string): RequestKey | null {
  const m = /^([^/]+)\/(execute|compensate|reserve|commit|reject)\/([1-9][0-9]{0,5})\/(.+)$/.exec(requestId);
  if (!m) return null;
  return { uuid: m[1]!, phase: m[2] as StepPhase, attempt: Number(m[3]), step: m[4]! };
}
