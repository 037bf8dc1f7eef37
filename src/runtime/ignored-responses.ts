import type { Clock } from '../clock.js';
import { previewJson } from '../json.js';
import type { SagaLogger } from '../logger.js';
import { isFinalStatus, type SagaStatus } from '../status.js';
import { RateLimited } from '../util/rate-limited.js';
import { transactionService } from '../../machines/effects.js';

/** Why a response was ignored. */
export type IgnoredKind = 'duplicate' | 'late' | 'foreign';

/** The execution a response was for, as found: its status, its steps' records and the services that took part. */
export interface Seen {
  status: SagaStatus;
  steps: object;
  services?: readonly string[];
}

/** Whether the execution knows the step a response names: one it ran, or a service's part of its two-phase commit. */
function knows(seen: Seen, step: string): boolean {
  const service = transactionService(step);
  if (service !== null) return seen.services?.includes(service) ?? false;
  return Object.hasOwn(seen.steps, step);
}

/**
 * Responses that did not apply, counted by kind: `duplicate` (its step ran, or its service took
 * part in the two-phase commit: an answer already taken, or to an attempt since retried), `late` (the execution had ended), `foreign` (no such
 * execution, a step it never ran, or a request id sagachart does not make). Duplicates and late
 * ones are logged as info; foreign ones are warnings, at most one a second (a peer could send many).
 */
export class IgnoredResponses {
  readonly #counts: Record<IgnoredKind, number> = { duplicate: 0, late: 0, foreign: 0 };
  readonly #log: SagaLogger;
  readonly #foreign: RateLimited;

  constructor(log: SagaLogger, clock: Clock) {
    this.#log = log;
    this.#foreign = new RateLimited(clock, 1_000);
  }

  get counts(): Readonly<Record<IgnoredKind, number>> {
    return { ...this.#counts };
  }

  /** A response that did not apply; `seen` is the execution as found (none: no such execution). */
  ignore(uuid: string, requestId: string, step: string, why: string, seen?: Seen): void {
    const kind: IgnoredKind = !seen ? 'foreign' : isFinalStatus(seen.status) ? 'late' : knows(seen, step) ? 'duplicate' : 'foreign';
    this.#counts[kind]++;
    if (kind === 'foreign') this.#foreign.hit((suppressed) => this.#log.warn?.('ignored a foreign response', { uuid, requestId, why, ...(suppressed ? { suppressed } : {}) }));
    else this.#log.info?.(`ignored a ${kind} response`, { uuid, requestId, why });
  }

  /** A response whose request id is not one sagachart makes. */
  unknownRequestId(requestId: unknown): void {
    this.#counts.foreign++;
    this.#foreign.hit((suppressed) => this.#log.warn?.('ignored a response with an unknown request id', { requestId: previewJson(requestId, 120), ...(suppressed ? { suppressed } : {}) }));
  }
}
