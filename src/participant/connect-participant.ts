import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { z } from 'zod';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { SagaError } from '../errors/saga-error.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import type { SagaResponseData } from '../messages/saga-response.js';
import { CloseCode, OrchestratorFrame, parseFrame, PROTOCOL_VERSION, SERVICE_HEADER, type RequestFrame, type TransactionFrame } from '../transport/protocol.js';
import { ParticipantRuntime, type ParticipantHandlers, type TransactionHooks } from './participant-runtime.js';

/**
 * TLS options of a participant's `wss://` connection, passed to ws's client (and on to
 * `tls.connect`): `ca` to trust a private CA or a self-signed orchestrator certificate, `cert` and
 * `key` (or `pfx`) for a client certificate, `servername` when the URL's host is not the name in
 * the certificate.
 *
 * @example
 * ```ts
 * const tls: ParticipantTlsOptions = { ca: readFileSync('orchestrator-ca.pem'), servername: 'orchestrator.internal' };
 * await connectParticipant({ url: 'wss://10.0.0.7:7400', tls, service, token, handlers });
 * ```
 */
export type ParticipantTlsOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase' | 'servername' | 'rejectUnauthorized' | 'minVersion' | 'ciphers'>;

/**
 * Options of {@link connectParticipant}. `onReserve`, `onCommit` and `onReject` are the hooks of
 * the two-phase commit (see `TransactionHook`): without them the service votes yes and
 * acknowledges at once. Every process of one service should register the same hooks.
 */
export interface ParticipantOptions extends TransactionHooks {
  /** The orchestrator's `WebSocketBroker` URL, e.g. `ws://127.0.0.1:7400` or `wss://orchestrator:7400/sagachart`. */
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
  /** TLS options for a `wss://` URL; not with `ws://`. @defaultValue Node's trusted CAs, and the URL's host as the name checked */
  tls?: ParticipantTlsOptions;
  /** Runs the reconnect backoff and the heartbeat watchdog. @defaultValue the system clock */
  clock?: Clock;
  /** Jitter of the reconnect backoff, a number in [0, 1). @defaultValue Math.random */
  random?: () => number;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
}

const Options = z
  .object({
    url: z.string().regex(/^wss?:\/\//i, { message: 'must be a ws:// or wss:// URL' }),
    service: z.string().min(1).max(200),
    token: z.string().min(1),
    reconnect: z.union([z.literal(false), z.object({ initialDelayMs: z.number().int().min(1).optional(), maxDelayMs: z.number().int().min(1).optional() })]).optional(),
    tls: z.object({}).loose().optional(),
  })
  .loose()
  .superRefine((o, ctx) => {
    if (o.tls && !/^wss:/i.test(o.url)) ctx.addIssue({ code: 'custom', path: ['tls'], message: `applies to a wss:// URL only, and the URL is ${o.url.slice(0, 80)}` });
    if (o.reconnect && (o.reconnect.initialDelayMs ?? 100) > (o.reconnect.maxDelayMs ?? 5_000)) {
      ctx.addIssue({ code: 'custom', path: ['reconnect', 'initialDelayMs'], message: 'must not be over reconnect.maxDelayMs' });
    }
  });

/**
 * Certificate errors another attempt will not fix: as far as this participant can tell, the
 * orchestrator is not the one the URL names.
 */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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
 * with `SagaParticipantRefusedError` if the orchestrator refuses it (401, wrong service or targets,
 * protocol), or if its TLS certificate is not trusted on the first connection (later, a certificate
 * error is logged and retried with backoff); rejects with a `TypeError` naming the option for a
 * bad option.
 *
 * @example
 * ```ts
 * const inventory = await connectParticipant({
 *   url: 'wss://orchestrator.internal:7400', service: 'inventory', token: process.env.INVENTORY_TOKEN!,
 *   tls: { ca: readFileSync('orchestrator-ca.pem') },
 *   handlers: {
 *     'inventory.reserve': async ({ items }, { requestId }) => ({ id: await reserve(items, requestId) }),
 *     'inventory.release': async ({ id }) => release(id),
 *   },
 * });
 * ```
 */
export async function connectParticipant(options: ParticipantOptions): Promise<Participant> {
  const parsed = Options.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TypeError(`connectParticipant: option "${issue.path.join('.')}" ${issue.message}.`);
  }
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
  readonly #clock: Clock;
  readonly #random: () => number;
  #ws: WebSocket | undefined;
  #welcomed = false;
  #everWelcomed = false;
  #closed = false;
  #attempt = 0;
  #reconnects = 0;
  #maxPayload = Infinity;
  #watchdog: TimerHandle | undefined;
  #retryTimer: TimerHandle | undefined;
  #waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(options: ParticipantOptions) {
    this.service = options.service;
    this.#options = options;
    this.#log = options.logger ?? defaultLogger;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#runtime = new ParticipantRuntime({
      service: options.service,
      handlers: options.handlers,
      ...(options.onReserve ? { onReserve: options.onReserve } : {}),
      ...(options.onCommit ? { onCommit: options.onCommit } : {}),
      ...(options.onReject ? { onReject: options.onReject } : {}),
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
    this.#clock.clearTimeout(this.#retryTimer);
    this.#clock.clearTimeout(this.#watchdog);
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
      ...(this.#options.tls as ClientOptions | undefined),
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
    ws.on('error', (err) => this.#error(err));
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
        this.#everWelcomed = true;
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
      case 'reserve':
      case 'commit':
      case 'reject':
        void this.#transaction(frame);
        return;
    }
  }

  #heartbeatMs = 0;

  /** Without a ping for 2.5 heartbeats the orchestrator is taken for dead and the socket closed. */
  #feedWatchdog(): void {
    this.#clock.clearTimeout(this.#watchdog);
    if (!this.#heartbeatMs) return;
    this.#watchdog = this.#clock.setTimeout(() => {
      this.#log.warn?.('no heartbeat from the orchestrator; reconnecting', { service: this.service });
      this.#ws?.terminate();
    }, this.#heartbeatMs * 2.5);
  }

  #error(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code || !UNTRUSTED_CERTIFICATE.has(code)) return this.#log.debug?.('participant connection error', { service: this.service, error: err.message });
    const message = `its TLS certificate is not trusted (${code}: ${err.message}); pass the CA that signed it as tls.ca`;
    // Never connected: the configuration is wrong, and waiting will not fix it. Connected before:
    // the orchestrator's certificate changed; keep trying (verification stays on) until it is fixed.
    if (!this.#everWelcomed) return this.#refused(message);
    this.#log.error?.(`The orchestrator refused participant "${this.service}": ${message}. Retrying.`, { service: this.service, code });
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
      ...(frame.user ? { user: frame.user } : {}),
    });
    this.#reply(response);
  }

  /** A message of the two-phase commit: its hook runs (through the runtime, which remembers the answer), then a `vote` or an `ack` goes back. */
  async #transaction(frame: TransactionFrame): Promise<void> {
    const response = await this.#runtime.handle(null, {
      requestId: frame.requestId,
      uuid: frame.transactionId,
      sagaName: frame.sagaName,
      target: this.service,
      step: `$tx/${this.service}`,
      phase: frame.type,
      attempt: frame.attempt,
    });
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.#welcomed) return;
    const reason = response.status === 200 ? undefined : response.content;
    const answer =
      frame.type === 'reserve'
        ? { type: 'vote', requestId: frame.requestId, vote: response.status === 200 ? 'yes' : 'no', ...(response.status === 500 ? { failed: true } : {}), ...(reason !== undefined ? { reason } : {}) }
        : { type: 'ack', requestId: frame.requestId, ok: response.status === 200, ...(reason !== undefined ? { reason } : {}) };
    let text = JSON.stringify(answer);
    if (Buffer.byteLength(text) > this.#maxPayload) {
      // Only the reason can be big: say so instead.
      text = JSON.stringify({ ...answer, reason: { code: 'SAGA_RESPONSE_TOO_BIG', message: `the reason is over ${this.#maxPayload} bytes` } });
    }
    ws.send(text);
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
    this.#clock.clearTimeout(this.#watchdog);
    this.#welcomed = false;
    if (this.#closed) return;
    if (code === CloseCode.PolicyViolation || code === CloseCode.ProtocolError) return this.#refused(`closed with ${code}: ${reason}`);
    const reconnect = this.#options.reconnect;
    if (reconnect === false) return this.#settle(new SagaParticipantRefusedError(this.service, `the connection closed (${code}) and reconnect is off`));
    const initial = reconnect?.initialDelayMs ?? 100;
    const max = reconnect?.maxDelayMs ?? 5_000;
    const attempt = this.#attempt++;
    const delayMs = Math.min(max, initial * 2 ** attempt) * (0.5 + this.#random() / 2);
    this.#reconnects++;
    this.#log.debug?.('the connection closed; reconnecting', { service: this.service, code, attempt, delayMs });
    this.#retryTimer = this.#clock.setTimeout(() => this.#open(), delayMs);
  }

  #refused(message: string): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#retryTimer);
    const err = new SagaParticipantRefusedError(this.service, message);
    this.#log.error?.(err.message, { service: this.service });
    this.#settle(err);
  }

  #settle(err: unknown): void {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }
}
