import { SagaBusinessError } from '../errors/saga-business-error.js';
import { cloneJson, type JsonValue } from '../json.js';
import type { StepPhase } from '../messages/request-id.js';
import { SagaResponse, type SagaResponseData } from '../messages/saga-response.js';
import { SagaResponseStatus } from '../messages/saga-response-status.js';

/** What a participant handler learns about the request beside its content. */
export interface ParticipantRequestInfo {
  /** Stable across re-sends: use it to make the handler idempotent. */
  requestId: string;
  /** The saga execution (also the two-phase-commit transaction id). */
  uuid: string;
  sagaName: string;
  target: string;
  step: string;
  phase: StepPhase;
  attempt: number;
}

/**
 * A participant's handler for one target. Return the response content (or a `SagaResponse`);
 * throw `SagaBusinessError` to refuse (400); anything else thrown becomes 500 and is retried.
 */
export type ParticipantHandler = (content: JsonValue, request: ParticipantRequestInfo) => unknown;

/** A participant's handlers, by target (`inventory.reserve`) or by service (`inventory`). */
export type ParticipantHandlers = Record<string, ParticipantHandler>;

/** Options of the participant runtime. */
export interface ParticipantRuntimeOptions {
  service: string;
  handlers: ParticipantHandlers;
  /** How many answered request ids are remembered to replay duplicates. @defaultValue 10000 */
  dedupCapacity?: number;
}

/**
 * The part of a participant that does not depend on the transport: finds the handler for a
 * target, turns its outcome into a response (value → 200, `SagaBusinessError` → 400, other
 * errors → 500), and answers a duplicate `requestId` with the first answer instead of running the
 * handler again. A 500 is not remembered, so a retry (a new attempt, a new id) or a re-send runs
 * the handler again.
 */
export class ParticipantRuntime {
  readonly service: string;
  readonly #handlers: ParticipantHandlers;
  readonly #capacity: number;
  readonly #answers = new Map<string, Promise<SagaResponseData>>();
  /** Requests handled (a duplicate answered from memory is not counted). */
  handled = 0;
  /** Duplicates answered from memory. */
  duplicates = 0;

  constructor(options: ParticipantRuntimeOptions) {
    this.service = options.service;
    this.#handlers = options.handlers;
    this.#capacity = options.dedupCapacity ?? 10_000;
  }

  /** The targets this participant declares. */
  get targets(): string[] {
    return Object.keys(this.#handlers);
  }

  /** Whether this participant handles `target` (by exact target or by service name). */
  handles(target: string): boolean {
    return this.#handlerFor(target) !== undefined;
  }

  /** Handles one request; never rejects. */
  handle(content: JsonValue, info: ParticipantRequestInfo): Promise<SagaResponseData> {
    const known = this.#answers.get(info.requestId);
    if (known) {
      this.duplicates++;
      return known;
    }
    const answer = this.#run(content, info);
    this.#answers.set(info.requestId, answer);
    void answer.then((response) => {
      if (response.status === SagaResponseStatus.SYSTEM_ERROR) this.#answers.delete(info.requestId);
    });
    if (this.#answers.size > this.#capacity) {
      const oldest = this.#answers.keys().next().value;
      if (oldest !== undefined) this.#answers.delete(oldest);
    }
    return answer;
  }

  #handlerFor(target: string): ParticipantHandler | undefined {
    const dot = target.indexOf('.');
    return this.#handlers[target] ?? (dot === -1 ? undefined : this.#handlers[target.slice(0, dot)]);
  }

  async #run(content: JsonValue, info: ParticipantRequestInfo): Promise<SagaResponseData> {
    const base = { requestId: info.requestId, relatedServices: [] as string[], service: this.service };
    const handler = this.#handlerFor(info.target);
    if (!handler) {
      return { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: { code: 'SAGA_NO_HANDLER', message: `service "${this.service}" has no handler for "${info.target}"` } };
    }
    this.handled++;
    try {
      const result = await handler(content, info);
      if (result instanceof SagaResponse) return { ...result.toJSON(), requestId: info.requestId, service: this.service };
      return { ...base, status: SagaResponseStatus.SUCCESS, content: toJson(result) };
    } catch (err) {
      if (err instanceof SagaBusinessError) return { ...base, status: SagaResponseStatus.ERROR, content: toJson(err.content) };
      const message = err instanceof Error ? err.message : String(err);
      return { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: { code: 'SAGA_PARTICIPANT_FAILED', message } };
    }
  }
}

function toJson(value: unknown): JsonValue {
  return value === undefined ? null : (cloneJson(value) as JsonValue);
}
