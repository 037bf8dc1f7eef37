import type { ZodType } from 'zod';
import { SagaUnknownRequestError } from '../errors/saga-unknown-request-error.js';
import { depthOver, previewJson, type ErrorInfo, type JsonValue } from '../json.js';
import { parseRequestId, type RequestKey } from './request-id.js';
import { isSagaResponseStatus, SagaResponseStatus } from './saga-response-status.js';

/** The plain data of a {@link SagaResponse}, as carried in events, snapshots and frames. */
export interface SagaResponseData {
  requestId: string;
  status: SagaResponseStatus;
  content: JsonValue;
  relatedServices: string[];
  /** The service that answered, when the broker knows it. */
  service?: string;
  /**
   * Set when sagachart answers in the participant's stead, with status 500: the request could not
   * be sent (`SAGA_BROKER_FAILED`), or the answer cannot be taken (`SAGA_RESPONSE_INVALID`).
   */
  error?: ErrorInfo;
}

/** How deep a response's content may nest (more cannot be stored safely). */
export const MAX_RESPONSE_DEPTH = 64;

/** What is wrong with a response's data, or `null`: the checks every response passes before it reaches its execution. */
export function responseProblem(data: SagaResponseData): string | null {
  if (!isSagaResponseStatus(data.status)) return `status ${previewJson(data.status)} is not 200, 400 or 500`;
  if (!Array.isArray(data.relatedServices) || data.relatedServices.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 200)) {
    return 'relatedServices must be an array of service names';
  }
  if (depthOver(data.content, MAX_RESPONSE_DEPTH)) return `its content is nested deeper than ${MAX_RESPONSE_DEPTH} levels`;
  return null;
}

/** The answer sagachart gives in a participant's stead: a 500 that says why. */
export function failedResponse(requestId: string, error: ErrorInfo): SagaResponseData {
  return { requestId, status: 500, content: null, relatedServices: [], error };
}

/**
 * A participant's answer to a {@link SagaRequest}, handed to `onSuccess` / `onError` and to
 * `manager.resume()`.
 *
 * @example
 * ```ts
 * .onSuccess(async (ctx, res) => { ctx.reservationId = (await res.content<{ id: string }>()).id; })
 * ```
 */
export class SagaResponse {
  /** Id of the request this answers: `uuid/phase/attempt/step`. */
  readonly requestId: string;
  readonly status: SagaResponseStatus;
  /** Services that took part in the work beyond the target (they join the two-phase commit). */
  readonly relatedServices: readonly string[];
  readonly service: string | undefined;
  /** Why sagachart answered in the participant's stead (status 500), when it did. */
  readonly error: ErrorInfo | undefined;
  readonly #content: JsonValue;

  constructor(data: { requestId: string; status?: SagaResponseStatus; content?: JsonValue; relatedServices?: readonly string[]; service?: string; error?: ErrorInfo }) {
    const status = data.status ?? SagaResponseStatus.SUCCESS;
    if (!isSagaResponseStatus(status)) {
      throw new TypeError(`SagaResponse status must be 200, 400 or 500, got ${JSON.stringify(status)}.`);
    }
    this.requestId = data.requestId;
    this.status = status;
    this.#content = data.content ?? null;
    this.relatedServices = [...(data.relatedServices ?? [])];
    this.service = data.service;
    this.error = data.error;
  }

  /** Builds a response from its plain data. */
  static from(data: SagaResponseData): SagaResponse {
    return new SagaResponse(data);
  }

  /** `true` for status 200. */
  get ok(): boolean {
    return this.status === SagaResponseStatus.SUCCESS;
  }

  /** The execution this response belongs to. */
  get uuid(): string {
    return this.key.uuid;
  }

  /** Execution, step, phase and attempt this response answers. */
  get key(): RequestKey {
    const key = parseRequestId(this.requestId);
    if (!key) throw new SagaUnknownRequestError(this.requestId);
    return key;
  }

  /**
   * The response body. With a zod schema it is parsed (and a mismatch throws, failing the
   * handler); without one it is returned as the type you name, unchecked.
   */
  async content<T = Record<string, unknown>>(schema?: ZodType<T>): Promise<T> {
    return schema ? schema.parse(this.#content) : (this.#content as T);
  }

  /** The plain data, for events and frames. */
  toJSON(): SagaResponseData {
    return {
      requestId: this.requestId,
      status: this.status,
      content: this.#content,
      relatedServices: [...this.relatedServices],
      ...(this.service !== undefined ? { service: this.service } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}
