import { SagaBusinessError } from '../errors/saga-business-error.js';
import { cloneJson, depthOver, type JsonValue } from '../json.js';
import type { SagaLogger } from '../logger.js';
import type { StepPhase } from '../messages/request-id.js';
import { MAX_RESPONSE_DEPTH, responseProblem, SagaResponse, type SagaResponseData } from '../messages/saga-response.js';
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

/**
 * Options of the participant runtime.
 *
 * @example
 * ```ts
 * const options: ParticipantRuntimeOptions = { service: 'inventory', handlers: { 'inventory.reserve': reserve }, dedupCapacity: 50_000, logger: console };
 * ```
 */
export interface ParticipantRuntimeOptions {
  service: string;
  handlers: ParticipantHandlers;
  /**
   * How many answered request ids are remembered to replay duplicates (the oldest is forgotten
   * first); a whole number >= 0. @defaultValue 10000
   */
  dedupCapacity?: number;
  /** Told about answers that could not be sent as the handler gave them. @defaultValue none: nothing is logged */
  logger?: SagaLogger;
}

/**
 * `code` of the content that replaces what a handler answered or threw when it cannot be sent:
 * not JSON (a BigInt, a cycle, a `toJSON` or a getter that throws), nested deeper than the
 * orchestrator takes ({@link MAX_RESPONSE_DEPTH}), or `relatedServices` that are not service names.
 */
const RESPONSE_CONTENT_INVALID = 'SAGA_RESPONSE_CONTENT_INVALID';
/** `code` of the 500 sent when a handler throws anything but a `SagaBusinessError`. */
const PARTICIPANT_FAILED = 'SAGA_PARTICIPANT_FAILED';
/** Longest message put into a replacement answer: it travels to the orchestrator and is stored there. */
const MAX_DESCRIPTION = 500;

/** An answer, and whether a re-send of its request id is answered with it. */
interface Answer {
  response: SagaResponseData;
  /** `false` when the handler failed (or answered 500 itself): a re-send runs it again. */
  remember: boolean;
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
  readonly #log: SagaLogger | undefined;
  readonly #answers = new Map<string, Promise<SagaResponseData>>();
  /** Requests handled (a duplicate answered from memory is not counted). */
  handled = 0;
  /** Duplicates answered from memory. */
  duplicates = 0;

  constructor(options: ParticipantRuntimeOptions) {
    this.service = options.service;
    this.#handlers = options.handlers;
    const capacity = options.dedupCapacity ?? 10_000;
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`ParticipantRuntime: dedupCapacity must be a whole number >= 0, got ${String(capacity)}.`);
    }
    this.#capacity = capacity;
    this.#log = options.logger;
  }

  /** The targets this participant declares. */
  get targets(): string[] {
    return Object.keys(this.#handlers);
  }

  /** Whether this participant handles `target` (by exact target or by service name). */
  handles(target: string): boolean {
    return this.#handlerFor(target) !== undefined;
  }

  /** Handles one request; never rejects, whatever the handler returns or throws. */
  handle(content: JsonValue, info: ParticipantRequestInfo): Promise<SagaResponseData> {
    const known = this.#answers.get(info.requestId);
    if (known) {
      this.duplicates++;
      return known;
    }
    const run = this.#run(content, info);
    const answer = run.then((a) => a.response);
    this.#answers.set(info.requestId, answer);
    void run.then((a) => {
      if (!a.remember && this.#answers.get(info.requestId) === answer) this.#answers.delete(info.requestId);
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

  /** Never rejects: every way out of a handler ends in an answer that can be sent. */
  async #run(content: JsonValue, info: ParticipantRequestInfo): Promise<Answer> {
    const base = { requestId: info.requestId, relatedServices: [] as string[], service: this.service };
    try {
      const handler = this.#handlerFor(info.target);
      if (!handler) {
        return { remember: false, response: { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: { code: 'SAGA_NO_HANDLER', message: `service "${this.service}" has no handler for "${info.target}"` } } };
      }
      this.handled++;
      let result: unknown;
      try {
        result = await handler(content, info);
      } catch (err) {
        return this.#fromThrown(err, base, info);
      }
      return this.#fromReturned(result, base, info);
    } catch (err) {
      // Only reached when the handler's outcome cannot even be looked at (a Proxy that throws on
      // every trap, a logger that throws): still an answer, never a rejection.
      return { remember: true, response: { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: invalidContent(`the handler's outcome could not be read: ${describe(err)}`) } };
    }
  }

  #fromReturned(result: unknown, base: BaseAnswer, info: ParticipantRequestInfo): Answer {
    if (result instanceof SagaResponse) {
      const data = result.toJSON();
      const answer = this.#sendable({ ...base, status: data.status, relatedServices: data.relatedServices }, () => data.content, info, 'the SagaResponse the handler returned');
      // A 500 the handler chose itself is a failure like a thrown error: a re-send runs it again.
      return { response: answer, remember: data.status !== SagaResponseStatus.SYSTEM_ERROR };
    }
    return { response: this.#sendable({ ...base, status: SagaResponseStatus.SUCCESS }, () => (result === undefined ? null : result), info, 'the value the handler returned'), remember: true };
  }

  #fromThrown(err: unknown, base: BaseAnswer, info: ParticipantRequestInfo): Answer {
    if (err instanceof SagaBusinessError) {
      return { response: this.#sendable({ ...base, status: SagaResponseStatus.ERROR }, () => err.content, info, `the content of SagaBusinessError "${bounded(describe(err), 200)}"`), remember: true };
    }
    return { response: { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: { code: PARTICIPANT_FAILED, message: bounded(describe(err), MAX_DESCRIPTION) } }, remember: false };
  }

  /**
   * The answer as it can go on the wire: content copied as JSON, or replaced by a description of
   * why it cannot be (a 400 stays a 400, so the saga's `onError` still runs; anything else is 500).
   */
  #sendable(answer: Omit<SagaResponseData, 'content'>, read: () => unknown, info: ParticipantRequestInfo, what: string): SagaResponseData {
    let reason: string | null;
    let content: JsonValue = null;
    try {
      content = cloneJson(read()) as JsonValue;
      reason = depthOver(content, MAX_RESPONSE_DEPTH) ? `it is nested deeper than ${MAX_RESPONSE_DEPTH} levels, more than the orchestrator takes; send it flatter` : null;
      reason ??= responseProblem({ ...answer, content: null });
    } catch (err) {
      reason = `it cannot be copied as JSON: ${describe(err)}`;
    }
    if (reason === null) return { ...answer, content };
    const status = answer.status === SagaResponseStatus.ERROR ? SagaResponseStatus.ERROR : SagaResponseStatus.SYSTEM_ERROR;
    const message = `${what} could not be sent: ${reason}`;
    try {
      this.#log?.error?.('a participant handler answered what cannot be sent; answering with a description instead', {
        service: this.service,
        target: info.target,
        requestId: info.requestId,
        status,
        reason: bounded(message, MAX_DESCRIPTION),
      });
    } catch {
      // A logger that throws must not turn an answer into a crash.
    }
    return { requestId: answer.requestId, service: this.service, relatedServices: [], status, content: invalidContent(message) };
  }
}

type BaseAnswer = Pick<SagaResponseData, 'requestId' | 'relatedServices' | 'service'>;

function invalidContent(message: string): JsonValue {
  return { code: RESPONSE_CONTENT_INVALID, message: bounded(message, MAX_DESCRIPTION) };
}

/** A message for anything thrown, without running anything of it that could throw again. */
function describe(err: unknown): string {
  try {
    if (err instanceof Error) return String(err.message || err.name);
    if (typeof err === 'string') return err;
    if (typeof err === 'bigint' || typeof err === 'symbol' || typeof err === 'number') return String(err);
    const text = JSON.stringify(err);
    return text === undefined ? typeof err : text;
  } catch {
    return `a ${typeof err} that cannot be described`;
  }
}

function bounded(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}
