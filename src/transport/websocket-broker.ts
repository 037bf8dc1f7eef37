import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import { systemClock, type Clock } from '../clock.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { serviceOf } from '../messages/saga-request.js';
import {
  CloseCode,
  parseFrame,
  ParticipantFrame,
  PROTOCOL_VERSION,
  SERVICE_HEADER,
  type ErrorFrame,
  type HelloFrame,
  type RequestFrame,
  type ResponseFrame,
} from './protocol.js';
import type { ResponseListener, SagaBroker } from './saga-broker.js';

/** Checks a participant's credentials at the HTTP upgrade. */
export type ParticipantAuth = Readonly<Record<string, string>> | ((service: string, token: string) => boolean | Promise<boolean>);

const Options = z
  .object({
    port: z.number().int().min(0).max(65535).default(0),
    host: z.string().default('127.0.0.1'),
    maxPayloadBytes: z.number().int().min(1024).default(1024 * 1024),
    heartbeatMs: z.number().int().min(10).default(10_000),
    helloTimeoutMs: z.number().int().min(10).default(5_000),
    maxBufferedBytes: z.number().int().min(1024).default(8 * 1024 * 1024),
    maxHeldRequests: z.number().int().min(1).default(10_000),
  })
  .strict();

/** Options of {@link WebSocketBroker.listen}. */
export interface WebSocketBrokerOptions {
  /** A token per service, or a function that checks one. Required: there is no anonymous access. */
  auth: ParticipantAuth;
  /** @defaultValue 0 (a free port; read it from `broker.port`) */
  port?: number;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** Largest frame accepted; a bigger one closes the connection with 1009. @defaultValue 1 MiB */
  maxPayloadBytes?: number;
  /** Ping interval; a peer that misses a whole interval is closed. @defaultValue 10000 */
  heartbeatMs?: number;
  /** Time a new connection has to send `hello`. @defaultValue 5000 */
  helloTimeoutMs?: number;
  /**
   * Bytes a connection may have queued unsent. Past it no request is routed to it; still past it
   * at the next heartbeat, it is closed (1013). @defaultValue 8 MiB
   */
  maxBufferedBytes?: number;
  /** Requests held while no participant handles their target; past it the oldest are dropped. @defaultValue 10000 */
  maxHeldRequests?: number;
  /** Used to expire held requests past their deadline. @defaultValue the system clock */
  clock?: Clock;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
}

interface Connection {
  id: number;
  ws: WebSocket;
  service: string;
  targets: Set<string>;
  ready: boolean;
  alive: boolean;
  /** Requests sent on this connection and not yet answered. */
  inflight: Set<string>;
  helloTimer: ReturnType<typeof setTimeout> | undefined;
}

interface Inflight {
  request: OutgoingRequest;
  connection: Connection;
}

/** What the broker has done, for tests, the dashboard and benchmarks. */
export interface WebSocketBrokerStats {
  connections: number;
  held: number;
  inflight: number;
  sent: number;
  resent: number;
  responses: number;
  rejectedFrames: number;
  droppedHeld: number;
}

/**
 * The orchestrator's WebSocket endpoint (on `ws`). Participants connect with
 * `connectParticipant()`, authenticated at the HTTP upgrade by a token per service, then say
 * `hello` with the targets they handle. Requests are routed by target, round-robin over the
 * connections of a service; held while none is connected (until their deadline); re-sent when the
 * connection they went out on closes unanswered. A response is accepted only from the service the
 * request went to. Bad frames get an error frame and the connection carries on; oversized frames
 * close it (1009); dead and non-reading peers are closed.
 *
 * @example
 * ```ts
 * const broker = await WebSocketBroker.listen({ port: 7400, auth: { inventory: process.env.INVENTORY_TOKEN! } });
 * const manager = new SagaManager({ broker, sagas: [CREATE_ORDER] });
 * ```
 */
export class WebSocketBroker implements SagaBroker {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #auth: ParticipantAuth;
  readonly #clock: Clock;
  readonly #log: SagaLogger;
  readonly #opts: z.infer<typeof Options>;
  readonly #connections = new Set<Connection>();
  readonly #inflight = new Map<string, Inflight>();
  /** Sockets corked since the last turn of the event loop: their frames go out in one write. */
  readonly #corked = new Set<Duplex>();
  readonly #held: OutgoingRequest[] = [];
  readonly #roundRobin = new Map<string, number>();
  readonly #heartbeat: ReturnType<typeof setInterval>;
  #listener: ResponseListener | undefined;
  #lastBeat = Date.now();
  #seq = 0;
  #closed = false;
  readonly #stats = { sent: 0, resent: 0, responses: 0, rejectedFrames: 0, droppedHeld: 0 };

  private constructor(http: Server, options: WebSocketBrokerOptions, parsed: z.infer<typeof Options>) {
    this.#http = http;
    this.#opts = parsed;
    this.#auth = options.auth;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? defaultLogger;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: parsed.maxPayloadBytes });
    http.on('upgrade', (req, socket, head) => void this.#upgrade(req, socket, head));
    this.#heartbeat = setInterval(() => this.#beat(), parsed.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(options: WebSocketBrokerOptions): Promise<WebSocketBroker> {
    const { auth, clock, logger, ...rest } = options;
    if (!auth || (typeof auth !== 'function' && typeof auth !== 'object')) {
      throw new TypeError('WebSocketBroker.listen needs `auth`: a token per service ({ inventory: "secret" }) or a function (service, token) => boolean.');
    }
    const parsed = Options.safeParse(rest);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new TypeError(`WebSocketBroker.listen: option "${issue.path.join('.')}" ${issue.message}.`);
    }
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('sagachart participants connect here by WebSocket.\n');
    });
    const broker = new WebSocketBroker(http, { auth, ...(clock ? { clock } : {}), ...(logger ? { logger } : {}) }, parsed.data);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(parsed.data.port, parsed.data.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    return broker;
  }

  /** The bound port. */
  get port(): number {
    return (this.#http.address() as AddressInfo).port;
  }

  /** `ws://host:port` for participants. */
  get url(): string {
    const host = this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host;
    return `ws://${host}:${this.port}`;
  }

  get stats(): WebSocketBrokerStats {
    return { ...this.#stats, connections: this.#connections.size, held: this.#held.length, inflight: this.#inflight.size };
  }

  /** Services with at least one ready connection. */
  connectedServices(): string[] {
    return [...new Set([...this.#connections].filter((c) => c.ready).map((c) => c.service))];
  }

  attach(listener: ResponseListener): void {
    this.#listener = listener;
  }

  send(request: OutgoingRequest): void {
    if (this.#closed) return;
    const previous = this.#inflight.get(request.requestId);
    // A re-send (recovery) goes back to the connection that has it, if it is still there:
    // participants deduplicate within their process.
    const connection = previous && this.#usable(previous.connection) ? previous.connection : this.#pick(request.target);
    if (!connection) {
      this.#hold(request);
      return;
    }
    this.#deliver(connection, request);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const c of this.#connections) {
      clearTimeout(c.helloTimer);
      c.ws.close(CloseCode.GoingAway, 'orchestrator shutting down');
    }
    const closing = [...this.#connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 1_000);
          c.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    await Promise.all(closing);
    this.#wss.close();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  // ---------------------------------------------------------------------------------------------

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Node drops its own socket error handler before 'upgrade' and ws adds one only inside
    // handleUpgrade: until then a reset (say, during an async auth check) would be uncaught.
    const onSocketError = (err: Error) => this.#log.debug?.('participant socket error during upgrade', { error: err.message });
    socket.on('error', onSocketError);
    const refuse = (status: number, message: string) => {
      this.#log.warn?.('refused a participant connection', { status, message, address: req.socket.remoteAddress });
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${message}\n`);
    };
    if (this.#closed) return refuse(503, 'the orchestrator is shutting down');
    const service = header(req, SERVICE_HEADER);
    const authorization = header(req, 'authorization');
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    if (!service || !token) return refuse(401, `send the service name in ${SERVICE_HEADER} and its token as "Authorization: Bearer <token>"`);
    let allowed = false;
    try {
      allowed = typeof this.#auth === 'function' ? await this.#auth(service, token) : sameSecret(this.#auth[service], token);
    } catch (err) {
      this.#log.error?.('participant auth check failed', { service, error: String(err) });
    }
    if (!allowed) return refuse(401, `wrong token for service "${service}"`);
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onSocketError);
      this.#connected(ws, service);
    });
  }

  #connected(ws: WebSocket, service: string): void {
    const connection: Connection = { id: ++this.#seq, ws, service, targets: new Set(), ready: false, alive: true, inflight: new Set(), helloTimer: undefined };
    this.#connections.add(connection);
    connection.helloTimer = setTimeout(() => {
      if (!connection.ready) this.#fail(connection, CloseCode.PolicyViolation, 'SAGA_HELLO_TIMEOUT', `no hello within ${this.#opts.helloTimeoutMs} ms`);
    }, this.#opts.helloTimeoutMs);
    ws.on('pong', () => {
      connection.alive = true;
    });
    ws.on('message', (data, isBinary) => this.#message(connection, data, isBinary));
    ws.on('error', (err) => this.#log.warn?.('participant connection error', { service, connection: connection.id, error: err.message }));
    ws.on('close', (code) => this.#disconnected(connection, code));
  }

  #message(connection: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) return this.#reject(connection, { type: 'error', code: 'SAGA_FRAME_INVALID', message: 'binary frames are not part of the protocol; send JSON text' });
    const parsed = parseFrame(ParticipantFrame, data.toString());
    if (!parsed.ok) return this.#reject(connection, parsed.error);
    const frame = parsed.frame;
    if (frame.type === 'hello') return this.#hello(connection, frame);
    if (!connection.ready) return this.#reject(connection, { type: 'error', code: 'SAGA_HELLO_REQUIRED', message: 'send hello before anything else' });
    this.#response(connection, frame);
  }

  #hello(connection: Connection, hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.#fail(connection, CloseCode.ProtocolError, 'SAGA_PROTOCOL_VERSION', `protocol ${hello.protocol} is not supported; this orchestrator speaks ${PROTOCOL_VERSION}`);
    }
    if (hello.service !== connection.service) {
      return this.#fail(connection, CloseCode.PolicyViolation, 'SAGA_WRONG_SERVICE', `hello says service "${hello.service}" but the connection authenticated as "${connection.service}"`);
    }
    const foreign = hello.targets.filter((t) => t !== connection.service && !t.startsWith(`${connection.service}.`));
    if (foreign.length) {
      return this.#fail(connection, CloseCode.PolicyViolation, 'SAGA_FOREIGN_TARGET', `service "${connection.service}" may only handle its own targets ("${connection.service}" or "${connection.service}.…"), not ${foreign.map((t) => `"${t}"`).join(', ')}`);
    }
    clearTimeout(connection.helloTimer);
    connection.targets = new Set(hello.targets);
    connection.ready = true;
    this.#sendFrame(connection, { type: 'welcome', protocol: PROTOCOL_VERSION, service: connection.service, heartbeatMs: this.#opts.heartbeatMs, maxPayloadBytes: this.#opts.maxPayloadBytes });
    this.#log.info?.('participant connected', { service: connection.service, connection: connection.id, targets: hello.targets, instance: hello.instance });
    this.#flushHeld();
  }

  #response(connection: Connection, frame: ResponseFrame): void {
    const entry = this.#inflight.get(frame.requestId);
    if (!entry) {
      this.#log.info?.('ignored a response to no request in flight (late, duplicate or unknown)', { requestId: frame.requestId, service: connection.service });
      return this.#reject(connection, { type: 'error', code: 'SAGA_RESPONSE_UNEXPECTED', message: 'no request with this id is waiting for an answer', requestId: frame.requestId });
    }
    if (entry.connection.service !== connection.service) {
      this.#log.warn?.('ignored a response from a service the request was not sent to', { requestId: frame.requestId, from: connection.service, to: entry.connection.service });
      return this.#reject(connection, { type: 'error', code: 'SAGA_RESPONSE_WRONG_SERVICE', message: `this request was sent to service "${entry.connection.service}"`, requestId: frame.requestId });
    }
    this.#inflight.delete(frame.requestId);
    entry.connection.inflight.delete(frame.requestId);
    this.#stats.responses++;
    this.#listener?.({ requestId: frame.requestId, status: frame.status, content: (frame.content ?? null) as never, relatedServices: frame.relatedServices ?? [], service: connection.service });
  }

  #disconnected(connection: Connection, code: number): void {
    clearTimeout(connection.helloTimer);
    this.#connections.delete(connection);
    if (connection.ready) this.#log.info?.('participant disconnected', { service: connection.service, connection: connection.id, code });
    if (this.#closed) return;
    // What went out on this connection and is unanswered goes out again, elsewhere or later.
    for (const requestId of connection.inflight) {
      const entry = this.#inflight.get(requestId);
      if (!entry || entry.connection !== connection) continue;
      this.#inflight.delete(requestId);
      this.#stats.resent++;
      this.send(entry.request);
    }
  }

  #usable(connection: Connection): boolean {
    return connection.ready && connection.ws.readyState === WebSocket.OPEN && connection.ws.bufferedAmount <= this.#opts.maxBufferedBytes;
  }

  #pick(target: string): Connection | undefined {
    const service = serviceOf(target);
    const candidates = [...this.#connections].filter((c) => this.#usable(c) && (c.targets.has(target) || c.targets.has(service)));
    if (!candidates.length) return undefined;
    const turn = this.#roundRobin.get(target) ?? 0;
    this.#roundRobin.set(target, turn + 1);
    return candidates[turn % candidates.length];
  }

  #deliver(connection: Connection, request: OutgoingRequest): void {
    this.#inflight.set(request.requestId, { request, connection });
    connection.inflight.add(request.requestId);
    this.#stats.sent++;
    const frame: RequestFrame = {
      type: 'request',
      requestId: request.requestId,
      uuid: request.uuid,
      sagaName: request.sagaName,
      step: request.step,
      phase: request.phase,
      attempt: request.attempt,
      target: request.target,
      content: request.content,
      deadline: request.deadline,
    };
    this.#sendFrame(connection, frame);
  }

  #hold(request: OutgoingRequest): void {
    if (this.#held.some((r) => r.requestId === request.requestId)) return;
    this.#held.push(request);
    if (this.#held.length > this.#opts.maxHeldRequests) {
      const dropped = this.#held.shift()!;
      this.#stats.droppedHeld++;
      this.#log.warn?.('dropped a held request: too many are waiting for participants (its step will time out and retry)', { requestId: dropped.requestId, target: dropped.target });
    }
  }

  #flushHeld(): void {
    const now = this.#clock.now();
    const waiting = this.#held.splice(0);
    for (const request of waiting) {
      if (request.deadline !== null && request.deadline <= now) continue;
      const connection = this.#pick(request.target);
      if (connection) this.#deliver(connection, request);
      else this.#held.push(request);
    }
  }

  #beat(): void {
    // After a stall of the event loop longer than a heartbeat, pongs that arrived meanwhile are
    // not read yet: judge no one this round, or every healthy peer would be dropped at once.
    const wall = Date.now();
    const stalled = wall - this.#lastBeat > this.#opts.heartbeatMs * 1.5;
    this.#lastBeat = wall;
    const now = this.#clock.now();
    for (let i = this.#held.length - 1; i >= 0; i--) {
      const deadline = this.#held[i]!.deadline;
      if (deadline !== null && deadline <= now) this.#held.splice(i, 1);
    }
    for (const c of this.#connections) {
      if (!c.alive && !stalled) {
        this.#log.warn?.('closed a participant connection that missed a heartbeat', { service: c.service, connection: c.id });
        c.ws.terminate();
        continue;
      }
      if (c.ws.bufferedAmount > this.#opts.maxBufferedBytes) {
        this.#log.warn?.('closed a participant connection that does not read', { service: c.service, connection: c.id, buffered: c.ws.bufferedAmount });
        c.ws.close(CloseCode.TryAgainLater, 'send buffer over the limit');
        setTimeout(() => c.ws.terminate(), 1_000).unref();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
    this.#flushHeld();
  }

  #reject(connection: Connection, error: ErrorFrame): void {
    this.#stats.rejectedFrames++;
    this.#sendFrame(connection, error);
  }

  #fail(connection: Connection, code: number, errorCode: string, message: string): void {
    this.#log.warn?.('closed a participant connection', { service: connection.service, connection: connection.id, code: errorCode, message });
    this.#reject(connection, { type: 'error', code: errorCode, message });
    connection.ws.close(code, closeReason(message));
  }

  #sendFrame(connection: Connection, frame: object): void {
    if (connection.ws.readyState !== WebSocket.OPEN) return;
    this.#cork(connection);
    connection.ws.send(JSON.stringify(frame));
  }

  /**
   * Holds a connection's writes until the end of this turn of the event loop, so that the frames
   * of every execution that moves on in this turn leave in one system call, not one each.
   */
  #cork(connection: Connection): void {
    const socket = (connection.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket || this.#corked.has(socket)) return;
    if (!this.#corked.size) setImmediate(this.#uncork);
    socket.cork();
    this.#corked.add(socket);
  }

  readonly #uncork = (): void => {
    for (const socket of this.#corked) socket.uncork();
    this.#corked.clear();
  };
}

/** A close reason may hold at most 123 bytes of UTF-8; the message may hold the peer's own text. */
function closeReason(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= 123) return message;
  let end = 120;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // do not cut a character in two
  return `${bytes.subarray(0, end).toString('utf8')}…`.slice(0, 121);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sameSecret(expected: string | undefined, given: string): boolean {
  if (expected === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
