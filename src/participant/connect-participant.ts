import { WebSocket } from 'ws';
import { SagaError } from '../errors/saga-error.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import type { SagaResponseData } from '../messages/saga-response.js';
import { CloseCode, OrchestratorFrame, parseFrame, PROTOCOL_VERSION, SERVICE_HEADER, type RequestFrame } from '../transport/protocol.js';
import { ParticipantRuntime, type ParticipantHandlers } from './participant-runtime.js';

/** Options of {@link connectParticipant}. */
export interface ParticipantOptions {
  /** The orchestrator's `WebSocketBroker` URL, e.g. `ws://127.0.0.1:7400`. */
  url: string;
  /** This service's name: requests for `service` and `service.*` targets can come here. */
  service: string;
  /** The token the broker expects for this service. */
  token: string;
  /** Handlers by target (`inventory.reserve`) or for the whole service (`inventory`). */
  handlers: ParticipantHandlers;
  /** Free-form instance id, shown in the orchestrator's logs. */
  instance?: string;
  /** Reconnect with exponential backoff and jitter; `false` to stay closed. @defaultValue { initialDelayMs: 100, maxDelayMs: 5000 } */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number } | false;
  /** How many answered request ids are remembered to replay duplicates. @defaultValue 10000 */
  dedupCapacity?: number;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
}

/** A connected participant. */
export interface Participant {
  readonly service: string;
  /** Whether the connection is open and welcomed now. */
  readonly connected: boolean;
  /** Handled requests, duplicates answered from memory, reconnections. */
  readonly stats: { handled: number; duplicates: number; reconnects: number };
  /** Resolves the next time the participant is connected and welcomed (at once if it is). */
  whenConnected(): Promise<void>;
  /** Closes the connection and stops reconnecting. */
  close(): Promise<void>;
}

/** A participant could not join: wrong token (401), wrong service or targets, unsupported protocol. */
export class SagaParticipantRefusedError extends SagaError {
  readonly service: string;
  constructor(service: string, message: string) {
    super('SAGA_PARTICIPANT_REFUSED', `The orchestrator refused participant "${service}": ${message}. Check the service name, its token and its targets.`);
    this.service = service;
  }
}

/**
 * Connects a participant service to the orchestrator and answers its requests: a handler's
 * return value is a 200, a thrown `SagaBusinessError` a 400, anything else thrown a 500 (retried
 * by the saga). Every request carries a stable `requestId`; a duplicate is answered with the first
 * answer without running the handler again (within this process). Reconnects with backoff; the
 * orchestrator re-sends what was not answered. Resolves once connected the first time; rejects
 * with `SagaParticipantRefusedError` if the orchestrator refuses it.
 *
 * @example
 * ```ts
 * const inventory = await connectParticipant({
 *   url: 'ws://127.0.0.1:7400', service: 'inventory', token: process.env.INVENTORY_TOKEN!,
 *   handlers: {
 *     'inventory.reserve': async ({ items }, { requestId }) => ({ id: await reserve(items, requestId) }),
 *     'inventory.release': async ({ id }) => release(id),
 *   },
 * });
 * ```
 */
export async function connectParticipant(options: ParticipantOptions): Promise<Participant> {
  const client = new ParticipantClient(options);
  await client.firstConnection;
  return client;
}

class ParticipantClient implements Participant {
  readonly service: string;
  readonly firstConnection: Promise<void>;
  readonly #options: ParticipantOptions;
  readonly #runtime: ParticipantRuntime;
  readonly #log: SagaLogger;
  #ws: WebSocket | undefined;
  #welcomed = false;
  #closed = false;
  #attempt = 0;
  #reconnects = 0;
  #maxPayload = Infinity;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(options: ParticipantOptions) {
    this.service = options.service;
    this.#options = options;
    this.#log = options.logger ?? defaultLogger;
    this.#runtime = new ParticipantRuntime({
      service: options.service,
      handlers: options.handlers,
      ...(options.dedupCapacity !== undefined ? { dedupCapacity: options.dedupCapacity } : {}),
    });
    this.firstConnection = this.whenConnected();
    this.#open();
  }

  get connected(): boolean {
    return this.#welcomed && this.#ws?.readyState === WebSocket.OPEN;
  }

  get stats() {
    return { handled: this.#runtime.handled, duplicates: this.#runtime.duplicates, reconnects: this.#reconnects };
  }

  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#watchdog);
    const ws = this.#ws;
    this.#settle(new SagaParticipantRefusedError(this.service, 'the participant was closed before it connected'));
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(CloseCode.GoingAway, 'participant shutting down');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1_000).unref();
    });
  }

  #open(): void {
    if (this.#closed) return;
    const ws = new WebSocket(this.#options.url, {
      headers: { authorization: `Bearer ${this.#options.token}`, [SERVICE_HEADER]: this.service },
    });
    this.#ws = ws;
    this.#welcomed = false;
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          service: this.service,
          targets: Object.keys(this.#options.handlers),
          ...(this.#options.instance ? { instance: this.#options.instance } : {}),
        }),
      );
    });
    ws.on('unexpected-response', (_req, res) => {
      // A 401 is final: stop reconnecting now, before the socket's close event would retry.
      const refused = res.statusCode === 401;
      if (refused) this.#closed = true;
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        const message = `HTTP ${res.statusCode}${body ? `: ${body.trim()}` : ''}`;
        if (refused) this.#refused(message);
        else this.#log.warn?.('orchestrator refused the connection; retrying', { service: this.service, message });
        ws.terminate();
      });
    });
    ws.on('ping', () => this.#feedWatchdog());
    ws.on('message', (data, isBinary) => this.#message(data.toString(), isBinary));
    ws.on('error', (err) => this.#log.debug?.('participant connection error', { service: this.service, error: err.message }));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
  }

  #message(text: string, isBinary: boolean): void {
    if (isBinary) return;
    const parsed = parseFrame(OrchestratorFrame, text);
    if (!parsed.ok) {
      this.#log.warn?.('ignored a frame from the orchestrator that does not match the protocol', { service: this.service, error: parsed.error.message });
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'welcome':
        this.#welcomed = true;
        this.#attempt = 0;
        this.#maxPayload = frame.maxPayloadBytes;
        this.#heartbeatMs = frame.heartbeatMs;
        this.#feedWatchdog();
        this.#settle(null);
        return;
      case 'error':
        this.#log.warn?.('the orchestrator refused a frame', { service: this.service, code: frame.code, message: frame.message, requestId: frame.requestId });
        return;
      case 'request':
        void this.#handle(frame);
        return;
    }
  }

  #heartbeatMs = 0;

  /** Without a ping for 2.5 heartbeats the orchestrator is taken for dead and the socket closed. */
  #feedWatchdog(): void {
    clearTimeout(this.#watchdog);
    if (!this.#heartbeatMs) return;
    this.#watchdog = setTimeout(() => {
      this.#log.warn?.('no heartbeat from the orchestrator; reconnecting', { service: this.service });
      this.#ws?.terminate();
    }, this.#heartbeatMs * 2.5);
    this.#watchdog.unref();
  }

  async #handle(frame: RequestFrame): Promise<void> {
    const response = await this.#runtime.handle(frame.content as never, {
      requestId: frame.requestId,
      uuid: frame.uuid,
      sagaName: frame.sagaName,
      target: frame.target,
      step: frame.step,
      phase: frame.phase,
      attempt: frame.attempt,
    });
    this.#reply(response);
  }

  #reply(response: SagaResponseData): void {
    const ws = this.#ws;
    // Not connected: the answer stays in the runtime's memory and is replayed when the
    // orchestrator sends the request again after the reconnect.
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.#welcomed) return;
    let text = JSON.stringify({ type: 'response', requestId: response.requestId, status: response.status, content: response.content, relatedServices: response.relatedServices });
    if (Buffer.byteLength(text) > this.#maxPayload) {
      this.#log.error?.('a response is larger than the orchestrator accepts; answering 500 instead', { service: this.service, requestId: response.requestId, bytes: Buffer.byteLength(text) });
      text = JSON.stringify({
        type: 'response',
        requestId: response.requestId,
        status: 500,
        content: { code: 'SAGA_RESPONSE_TOO_BIG', message: `the response is over ${this.#maxPayload} bytes` },
      });
    }
    ws.send(text);
  }

  #onClose(code: number, reason: string): void {
    clearTimeout(this.#watchdog);
    this.#welcomed = false;
    if (this.#closed) return;
    if (code === CloseCode.PolicyViolation || code === CloseCode.ProtocolError) return this.#refused(`closed with ${code}: ${reason}`);
    const reconnect = this.#options.reconnect;
    if (reconnect === false) return this.#settle(new SagaParticipantRefusedError(this.service, `the connection closed (${code}) and reconnect is off`));
    const initial = reconnect?.initialDelayMs ?? 100;
    const max = reconnect?.maxDelayMs ?? 5_000;
    const delay = Math.min(max, initial * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
    this.#reconnects++;
    this.#retryTimer = setTimeout(() => this.#open(), delay);
  }

  #refused(message: string): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const err = new SagaParticipantRefusedError(this.service, message);
    this.#log.error?.(err.message, { service: this.service });
    this.#settle(err);
  }

  #settle(err: unknown): void {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }
}
