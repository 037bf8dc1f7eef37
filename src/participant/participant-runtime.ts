import { SagaBusinessError } from '../errors/saga-business-error.js';
import { cloneJson, depthOver, type JsonValue } from '../json.js';
import type { SagaLogger } from '../logger.js';
import { isTransactionPhase, type StepPhase, type TransactionPhase } from '../messages/request-id.js';
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
  /** Who started the execution, when the orchestrator was told (`run(saga, { user })`). */
  user?: string;
}

/**
 * A participant's handler for one target. Return the response content (or a `SagaResponse`);
 * throw `SagaBusinessError` to refuse (400); anything else thrown becomes 500 and is retried.
 */
export type ParticipantHandler = (content: JsonValue, request: ParticipantRequestInfo) => unknown;

/** A participant's handlers, by target (`inventory.reserve`) or by service (`inventory`). */
export type ParticipantHandlers = Record<string, ParticipantHandler>;

/**
 * A hook of the two-phase commit, called with the transaction id (the execution's uuid, which
 * every request of the execution carried as `uuid`).
 *
 * - `onReserve`: can the changes made under this transaction be made final? Return nothing or
 *   `true` to vote yes; return `false` or throw `SagaBusinessError` to vote no (the execution is
 *   rolled back); anything else thrown votes no too. A service that votes yes must be able to
 *   commit later, whatever happens meanwhile.
 * - `onCommit`: make the changes final. `onReject`: drop them.
 *   Throwing makes the orchestrator send it again later, until it returns.
 *
 * Each is called once per transaction and phase in this process (a repeat is answered from
 * memory); make them idempotent by transaction id all the same, as a restarted participant may
 * be asked again. The hooks of one transaction run one at a time, in the order their messages
 * came: a reject that comes while `onReserve` still runs (its vote was late) waits for it, so
 * that it drops what the reserve made.
 */
export type TransactionHook = (transactionId: string, request: ParticipantRequestInfo) => unknown;

/** The hooks of the two-phase commit. A service without them votes yes and acknowledges at once. */
export interface TransactionHooks {
  onReserve?: TransactionHook;
  onCommit?: TransactionHook;
  onReject?: TransactionHook;
}

/**
 * Options of the participant runtime.
 *
 * @example
 * ```ts
 * const options: ParticipantRuntimeOptions = { service: 'inventory', handlers: { 'inventory.reserve': reserve }, dedupCapacity: 50_000, logger: console };
 * ```
 */
export interface ParticipantRuntimeOptions extends TransactionHooks {
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
  readonly #hooks: Record<TransactionPhase, TransactionHook | undefined>;
  readonly #capacity: number;
  readonly #log: SagaLogger | undefined;
  readonly #answers = new Map<string, Promise<SagaResponseData>>();
  /** The last hook run of each transaction with one under way: the next waits for it. */
  readonly #hookRuns = new Map<string, Promise<Answer>>();
  /** Requests handled (a duplicate answered from memory is not counted). */
  handled = 0;
  /** Duplicates answered from memory. */
  duplicates = 0;

  constructor(options: ParticipantRuntimeOptions) {
    this.service = options.service;
    this.#handlers = options.handlers;
    for (const name of ['onReserve', 'onCommit', 'onReject'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`ParticipantRuntime: ${name} must be a function, got ${typeof options[name]}.`);
    }
    this.#hooks = { reserve: options.onReserve, commit: options.onCommit, reject: options.onReject };
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

  /** Whether this participant takes `request`: a request it has a handler for, or a transaction message to its service. */
  takes(request: { target: string; phase: StepPhase }): boolean {
    return isTransactionPhase(request.phase) ? request.target === this.service : this.handles(request.target);
  }

  /**
   * Handles one request, or one message of the two-phase commit (phase `reserve`, `commit` or
   * `reject`: its hook runs); never rejects, whatever the handler or hook returns or throws.
   */
  handle(content: JsonValue, info: ParticipantRequestInfo): Promise<SagaResponseData> {
    // A request is remembered by its id; a transaction's message by its phase and transaction,
    // so a commit sent again as a new attempt (its answer was lost) does not commit twice.
    const key = isTransactionPhase(info.phase) ? `${info.phase} ${info.uuid}` : info.requestId;
    const known = this.#answers.get(key);
    if (known) {
      this.duplicates++;
      return known.then((response) => (response.requestId === info.requestId ? response : { ...response, requestId: info.requestId }));
    }
    const run = isTransactionPhase(info.phase) ? this.#transaction(info.phase, info) : this.#run(content, info);
    const answer = run.then((a) => a.response);
    this.#answers.set(key, answer);
    void run.then((a) => {
      if (!a.remember && this.#answers.get(key) === answer) this.#answers.delete(key);
    });
    if (this.#answers.size > this.#capacity) {
      const oldest = this.#answers.keys().next().value;
      if (oldest !== undefined) this.#answers.delete(oldest);
    }
    return answer;
  }

  /** Runs a hook of the two-phase commit once the hook of the same transaction under way, if any, has ended. */
  #transaction(phase: TransactionPhase, info: ParticipantRequestInfo): Promise<Answer> {
    const before = this.#hookRuns.get(info.uuid);
    const run = before ? before.then(() => this.#hook(phase, info)) : this.#hook(phase, info);
    this.#hookRuns.set(info.uuid, run);
    const forget = () => {
      if (this.#hookRuns.get(info.uuid) === run) this.#hookRuns.delete(info.uuid);
    };
    void run.then(forget, forget);
    return run;
  }

  /** Runs a hook of the two-phase commit: a vote (reserve) or an acknowledgement (commit, reject). */
  async #hook(phase: TransactionPhase, info: ParticipantRequestInfo): Promise<Answer> {
    const base = { requestId: info.requestId, relatedServices: [] as string[], service: this.service };
    const hook = this.#hooks[phase];
    if (!hook) return { remember: true, response: { ...base, status: SagaResponseStatus.SUCCESS, content: phase === 'reserve' ? { vote: 'yes' } : { ack: true } } };
    this.handled++;
    let result: unknown;
    try {
      result = await hook(info.uuid, info);
    } catch (err) {
      if (phase === 'reserve' && err instanceof SagaBusinessError) {
        return { remember: true, response: this.#sendable({ ...base, status: SagaResponseStatus.ERROR }, () => err.content, info, `the content of SagaBusinessError "${bounded(describe(err), 200)}"`) };
      }
      return { remember: false, response: { ...base, status: SagaResponseStatus.SYSTEM_ERROR, content: { code: PARTICIPANT_FAILED, message: bounded(describe(err), MAX_DESCRIPTION) } } };
    }
    if (phase === 'reserve' && result === false) return { remember: true, response: { ...base, status: SagaResponseStatus.ERROR, content: { vote: 'no' } } };
    return { remember: true, response: { ...base, status: SagaResponseStatus.SUCCESS, content: phase === 'reserve' ? { vote: 'yes' } : { ack: true } } };
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
