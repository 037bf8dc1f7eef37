import type { StepRecord } from './types.js';

/**
 * Whether a step's compensation failed and nobody has resolved it by hand: the one rule behind
 * "an operator may retry or resolve this compensation" and "this conditional step's branch was
 * not fully undone".
 */
export function compensationFailed(record: StepRecord | undefined): boolean {
  return record?.compensated === false && record.compensation?.error !== undefined && !record.compensation.resolved;
}
