import http, { type IncomingMessage, type Server as HttpServer } from 'node:http';
import https, { type Server as HttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { claimedResponses } from './http-claims.js';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { defaultLogger, type LogFields, type SagaLogger } from '../logger.js';
import { isTransactionPhase } from '../messages/request-id.js';
import { serviceOf } from '../messages/saga-request.js';
import {
  CloseCode,
  closeReason,
  FrameError,
  parseFrame,
  ParticipantFrame,
  preview,
  PROTOCOL_VERSION,
  SERVICE_HEADER,
  type ErrorFrame,
  type FrameErrorCode,
  type HelloFrame,
  type AckFrame,
  type RequestFrame,
  type ResponseFrame,
  type TransactionFrame,
  type VoteFrame,
} from './protocol.js';
import type { ResponseListener, SagaBroker } from './saga-broker.js';

/** Checks a participant's credentials at the HTTP upgrade. */
export type ParticipantAuth = Readonly<Record<string, string>> | ((service: string, token: string) => boolean | Promise<boolean>);

const Pem = z.union([z.string(), z.instanceof(Buffer), z.array(z.unknown())]);
const Options = z
  .object({
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().min(1).optional(),
    path: z.string().regex(/^\/[^?#]*$/, { message: 'must be a path that starts with "/", without a query' }).optional(),
    tls: z
      .object({ key: Pem.optional(), cert: Pem.optional(), pfx: Pem.optional() })
      .loose()
      .refine((t) => t.pfx !== undefined || (t.key !== undefined && t.cert !== undefined), { message: 'needs `key` and `cert` (PEM), or `pfx`' })
      .optional(),
    server: z.custom<HttpServer | HttpsServer>((v) => v instanceof http.Server || v instanceof https.Server, { message: 'must be a node:http or node:https Server' }).optional(),
    maxPayloadBytes: z.number().int().min(1024).default(1024 * 1024),
    heartbeatMs: z.number().int().min(10).default(10_000),
    helloTimeoutMs: z.number().int().min(10).default(5_000),
    maxBufferedBytes: z.number().int().min(1024).default(8 * 1024 * 1024),
    maxHeldRequests: z.number().int().min(1).default(10_000),
    maxInvalidFrames: z.number().int().min(1).default(100),
    invalidFrameWindowMs: z.number().int().min(1).default(10_000),
    maxFramesPerTurn: z.number().int().min(1).default(64),
    maxPendingConnections: z.number().int().min(1).default(1_000),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!o.server) return;
    for (const field of ['port', 'host', 'tls'] as const) {
      if (o[field] === undefined) continue;
      const why = field === 'tls' ? 'give the https server its key and cert instead' : 'the server you pass listens where you bound it';
      ctx.addIssue({ code: 'custom', path: [field], message: `cannot be combined with "server" (${why})` });
    }
  });
type ParsedOptions = z.infer<typeof Options>;

/** Options of {@link WebSocketBroker.listen}. */
export interface WebSocketBrokerOptions {
  /** A token per service, or a function that checks one. Required: there is no anonymous access. */
  auth: ParticipantAuth;
  /** Not with `server`. @defaultValue 0 (a free port; read it from `broker.port`) */
  port?: number;
  /** Not with `server`. @defaultValue '127.0.0.1' */
  host?: string;
  /**
   * Serve `https`/`wss`: the options of `https.createServer`, with `key` and `cert` (PEM) or `pfx`
   * (and any other, e.g. `ca` and `requestCert` for client certificates). Not with `server`.
   * @defaultValue none: plain `ws`, for a trusted network or behind a TLS-terminating proxy
   */
  tls?: HttpsServerOptions;
  /**
   * An `http` or `https` server of yours to attach to instead of listening: the broker handles its
   * WebSocket upgrades (those to `path`, if set) and leaves its other requests to it; `close()`
   * detaches and leaves the server running. @defaultValue none: the broker listens on `port`
   */
  server?: HttpServer | HttpsServer;
  /**
   * Participants connect at this path only, e.g. `/sagachart`. Upgrades to other paths are left to
   * the server's other `upgrade` listeners, or answered 404 if there are none. @defaultValue any path
   */
  path?: string;
  /** Largest frame accepted; a bigger one closes the connection with 1009. @defaultValue 1 MiB */
  maxPayloadBytes?: number;
  /** Ping interval; a peer that misses a whole interval is closed. @defaultValue 10000 */
  heartbeatMs?: number;
  /** Time a new connection has for its token check and its `hello`. @defaultValue 5000 */
  helloTimeoutMs?: number;
  /**
   * Bytes a connection may have queued unsent. Past it no request is routed to it and an error
   * frame for it is dropped and the connection closed (1013); still past it at the next heartbeat,
   * it is closed (1013). @defaultValue 8 MiB
   */
  maxBufferedBytes?: number;
  /** Requests held while no participant handles their target; past it the oldest are dropped. @defaultValue 10000 */
  maxHeldRequests?: number;
  /**
   * Invalid frames (not JSON, not the protocol, binary, out of order, answers for another service)
   * a connection may send per `invalidFrameWindowMs`; the next one closes it (1008,
   * `SAGA_TOO_MANY_INVALID_FRAMES`). A response to no request in flight does not count: at-least-once
   * delivery makes those. @defaultValue 100
   */
  maxInvalidFrames?: number;
  /** The window of `maxInvalidFrames`. @defaultValue 10000 */
  invalidFrameWindowMs?: number;
  /**
   * Frames of one connection handled per turn of the event loop; past it the connection's socket
   * is paused until the next turn, so that a flooding peer cannot starve the others. @defaultValue 64
   */
  maxFramesPerTurn?: number;
  /**
   * Connections that are joining (token check or `hello` pending) at once; more are refused with
   * HTTP 503 (the SDK retries). With `helloTimeoutMs`, bounds what peers that never join can hold.
   * @defaultValue 1000
   */
  maxPendingConnections?: number;
  /**
   * Runs the broker's time: heartbeats, hello and token-check deadlines, the invalid-frame window,
   * the grace before a closed peer is cut, the expiry of held requests, log rate limits. With a
   * `ManualClock`, advance it by at most a heartbeat per turn of the event loop (peers answer pings
   * between beats; beats within one turn judge no one). @defaultValue the system clock
   */
  clock?: Clock;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
}

interface Connection {
  readonly id: number;
  readonly ws: WebSocket;
  readonly service: string;
  targets: Set<string>;
  ready: boolean;
  alive: boolean;
  /** A close frame went out or the socket was cut: what it sends is not read any more. */
  closing: boolean;
  /** Requests sent on this connection and not yet answered. */
  inflight: Set<string>;
  /** The hello deadline, then the grace before a closing peer is cut. */
  timer: TimerHandle | undefined;
  /** Frees its place among the connections still joining (once). */
  joined: () => void;
  invalid: number;
  invalidSince: number;
  /** Frames handled in this turn of the event loop. */
  turnFrames: number;
  /** Frames that came past the turn's budget (the socket is paused meanwhile), from `backlogAt` on. */
  backlog: Array<{ data: RawData; isBinary: boolean } | undefined>;
  backlogAt: number;
}

interface Inflight {
  request: OutgoingRequest;
  connection: Connection;
  /** When it went out (clock ms), for the answer's latency. */
  sentAt: number;
}

/** One answer from a participant, as {@link WebSocketBroker.onAnswer} tells it. */
export interface BrokerAnswer {
  service: string;
  sagaName: string;
  /** `execute`, `compensate`, `reserve`, `commit` or `reject`. */
  phase: string;
  /** The status it counts as (a yes vote and an ack are 200). */
  status: number;
  /** From the request going out on this connection to its answer (ms). */
  latencyMs: number;
}

/** What the broker has done, for tests, the dashboard and benchmarks. */
export interface WebSocketBrokerStats {
  connections: number;
  /** Connections joining: token check or `hello` pending. */
  pending: number;
  held: number;
  inflight: number;
  /** Bytes queued unsent over every connection now. */
  bufferedBytes: number;
  sent: number;
  resent: number;
  responses: number;
  rejectedFrames: number;
  /** Error frames not sent because the peer's send buffer was over `maxBufferedBytes`. */
  droppedErrorFrames: number;
  droppedHeld: number;
  /** Held requests whose deadline passed before a participant took them. */
  expiredHeld: number;
  /** Requests in flight forgotten a minute after their deadline, unanswered. */
  expiredInflight: number;
  /** Times a connection was paused for going over `maxFramesPerTurn`. */
  throttled: number;
  /** Upgrades refused (401, 404, 503). */
  refusedUpgrades: number;
}

/** How long past its deadline a request in flight is kept for a late answer. */
const EXPIRED_INFLIGHT_GRACE_MS = 60_000;
/** How long a peer that was told to go (close frame, HTTP refusal) may keep its socket. */
const CLOSE_GRACE_MS = 1_000;
/** Lines a peer can cause are logged at most once per kind in this interval. */
const LOG_INTERVAL_MS = 1_000;

/**
 * The orchestrator's WebSocket endpoint (on `ws`), over `ws` or `wss` (`tls`), on its own port or
 * attached to your http(s) server (`server`, `path`). Participants connect with
 * `connectParticipant()`, authenticated at the HTTP upgrade by a token per service, then say
 * `hello` with the targets they handle. Requests are routed by target, round-robin over the
 * connections of a service; held while none is connected (until their deadline); re-sent when the
 * connection they went out on closes unanswered. A response is accepted only from the service the
 * request went to. Bad frames get a bounded error frame and the connection carries on, up to
 * `maxInvalidFrames` per window (then 1008); oversized frames close it (1009); dead and non-reading
 * peers are closed (1013); each connection is handled at most `maxFramesPerTurn` frames per turn.
 *
 * @example
 * ```ts
 * const broker = await WebSocketBroker.listen({
 *   port: 7400, auth: { inventory: process.env.INVENTORY_TOKEN! },
 *   tls: { key: readFileSync('orchestrator.key'), cert: readFileSync('orchestrator.crt') },
 * });
 * const manager = new SagaManager({ broker, sagas: [CREATE_ORDER] });
 * ```
 */
export class WebSocketBroker implements SagaBroker {
  readonly #server: HttpServer | HttpsServer;
  readonly #ownsServer: boolean;
  readonly #wss: WebSocketServer;
  readonly #auth: ParticipantAuth;
  readonly #clock: Clock;
  readonly #log: SagaLogger;
  readonly #opts: ParsedOptions;
  readonly #connections = new Set<Connection>();
  readonly #inflight = new Map<string, Inflight>();
  /** Sockets corked since the last turn of the event loop: their frames go out in one write. */
  readonly #corked = new Set<Duplex>();
  /** Connections that handled frames in this turn, and those paused past their budget. */
  readonly #busy = new Set<Connection>();
  readonly #throttled = new Set<Connection>();
  /** Sockets between the upgrade request and a connection (or their refusal's end). */
  readonly #upgrading = new Set<Duplex>();
  readonly #held = new Map<string, OutgoingRequest>();
  readonly #roundRobin = new Map<string, number>();
  readonly #logged = new Map<string, { at: number; suppressed: number }>();
  #beatTimer: TimerHandle | undefined;
  #lastBeat: number;
  #turnSinceBeat = true;
  #turnEnding = false;
  #listener: ResponseListener | undefined;
  readonly #answerListeners = new Set<(answer: BrokerAnswer) => void>();
  #pending = 0;
  #seq = 0;
  #closed = false;
  readonly #stats = { sent: 0, resent: 0, responses: 0, rejectedFrames: 0, droppedErrorFrames: 0, droppedHeld: 0, expiredHeld: 0, expiredInflight: 0, throttled: 0, refusedUpgrades: 0 };

  private constructor(server: HttpServer | HttpsServer, ownsServer: boolean, options: WebSocketBrokerOptions, parsed: ParsedOptions) {
    this.#server = server;
    this.#ownsServer = ownsServer;
    this.#opts = parsed;
    this.#auth = options.auth;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? defaultLogger;
    this.#lastBeat = this.#clock.now();
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: parsed.maxPayloadBytes });
    server.on('upgrade', this.#onUpgrade);
    this.#beatTimer = this.#clock.setTimeout(this.#beat, parsed.heartbeatMs);
  }

  /**
   * Starts listening (or attaches to `server`); resolves once the port is bound. Rejects with a
   * `TypeError` naming the option for a bad option or combination.
   */
  static async listen(options: WebSocketBrokerOptions): Promise<WebSocketBroker> {
    const { auth, clock, logger, ...rest } = options;
    checkAuth(auth);
    const parsed = Options.safeParse(rest);
    if (!parsed.success) throw optionError(parsed.error.issues[0]!);
    const own = !parsed.data.server;
    const server = parsed.data.server ?? createServer(options.tls);
    const broker = new WebSocketBroker(server, own, { auth, ...(clock ? { clock } : {}), ...(logger ? { logger } : {}) }, parsed.data);
    if (!own) return broker;
    if (server instanceof https.Server) server.on('tlsClientError', (err) => broker.#rare('tls', 'debug', 'a TLS handshake failed', { error: err.message }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(parsed.data.port ?? 0, parsed.data.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return broker;
  }

  /** The bound port. */
  get port(): number {
    return this.#address().port;
  }

  /** `ws://host:port[/path]` (or `wss://` over TLS) for participants. */
  get url(): string {
    const address = this.#address();
    const raw = this.#ownsServer ? (this.#opts.host ?? '127.0.0.1') : address.address;
    const host = raw.includes(':') ? `[${raw}]` : raw;
    return `${this.#server instanceof https.Server ? 'wss' : 'ws'}://${host}:${address.port}${this.#opts.path ?? ''}`;
  }

  /** The http(s) server the broker is on: the admin API attaches its routes here. */
  get server(): HttpServer | HttpsServer {
    return this.#server;
  }

  /**
   * Tells `listener` about every answer accepted from a participant (service, phase, status,
   * latency): for metrics. A listener that throws is ignored. Returns the function that stops it.
   */
  onAnswer(listener: (answer: BrokerAnswer) => void): () => void {
    this.#answerListeners.add(listener);
    return () => this.#answerListeners.delete(listener);
  }

  get stats(): WebSocketBrokerStats {
    let bufferedBytes = 0;
    for (const c of this.#connections) bufferedBytes += c.ws.bufferedAmount;
    return { ...this.#stats, connections: this.#connections.size, pending: this.#pending, held: this.#held.size, inflight: this.#inflight.size, bufferedBytes };
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
    const connection = previous && this.#usable(previous.connection) ? previous.connection : this.#pick(request);
    if (!connection) {
      this.#hold(request);
      return;
    }
    this.#deliver(connection, request);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimeout(this.#beatTimer);
    for (const socket of this.#upgrading) socket.destroy();
    const closing = [...this.#connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          this.#clock.clearTimeout(c.timer);
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.close(CloseCode.GoingAway, 'orchestrator shutting down');
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
    this.#server.off('upgrade', this.#onUpgrade);
    if (this.#ownsServer) {
      const server = this.#server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  // ---------------------------------------------------------------------------------------------

  #address(): AddressInfo {
    const address = this.#server.address();
    if (!address || typeof address === 'string') throw new TypeError('WebSocketBroker: the server is not listening on a TCP port (yet); listen first, then read `port` or `url`.');
    return address;
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const elsewhere = this.#opts.path !== undefined && (req.url ?? '/').split('?')[0] !== this.#opts.path;
    // Another upgrade listener of the same server may take it: then it is not the broker's to touch.
    if (elsewhere && this.#server.listenerCount('upgrade') > 1) return;
    // Node drops its own socket error handler before 'upgrade' and ws adds one only inside
    // handleUpgrade: until then a reset (say, during an async auth check) would be uncaught.
    const onSocketError = (err: Error) => this.#log.debug?.('participant socket error during upgrade', { error: err.message });
    socket.on('error', onSocketError);
    this.#upgrading.add(socket);
    socket.once('close', () => this.#upgrading.delete(socket));
    if (elsewhere) return this.#refuse(req, socket, 404, `participants connect at ${this.#opts.path}`);
    void this.#upgrade(req, socket, head, onSocketError);
  };

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, onSocketError: (err: Error) => void): Promise<void> {
    if (this.#closed) return this.#refuse(req, socket, 503, 'the orchestrator is shutting down');
    if (this.#pending >= this.#opts.maxPendingConnections) {
      return this.#refuse(req, socket, 503, `too many connections are joining (maxPendingConnections ${this.#opts.maxPendingConnections}); retry later`);
    }
    // Its place among the joining connections is freed once it says hello or goes away.
    this.#pending++;
    let joining = true;
    const joined = () => {
      if (joining) this.#pending--;
      joining = false;
    };
    socket.once('close', joined);
    const service = header(req, SERVICE_HEADER);
    const authorization = header(req, 'authorization');
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    if (!service || !token) return this.#refuse(req, socket, 401, `send the service name in ${SERVICE_HEADER} and its token as "Authorization: Bearer <token>"`, joined);
    const verdict = await this.#authenticate(service, token);
    if (verdict === 'late') return this.#refuse(req, socket, 503, `the token check did not answer within helloTimeoutMs (${this.#opts.helloTimeoutMs} ms)`, joined);
    if (!verdict) return this.#refuse(req, socket, 401, `wrong token for service "${preview(service, 64)}"`, joined);
    if (this.#closed) return this.#refuse(req, socket, 503, 'the orchestrator is shutting down', joined);
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onSocketError);
      this.#upgrading.delete(socket);
      this.#connected(ws, service, joined);
    });
  }

  /** `true` for a good token; `'late'` when the check does not answer within `helloTimeoutMs`. */
  async #authenticate(service: string, token: string): Promise<boolean | 'late'> {
    const auth = this.#auth;
    // An own property only: `__proto__` or `toString` are not services.
    if (typeof auth !== 'function') return sameSecret(Object.hasOwn(auth, service) ? auth[service] : undefined, token);
    let timer: TimerHandle | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = this.#clock.setTimeout(() => resolve('late'), this.#opts.helloTimeoutMs);
    });
    try {
      return await Promise.race([Promise.resolve(auth(service, token)).then((ok) => ok === true), late]);
    } catch (err) {
      this.#log.error?.('participant auth check failed', { service: preview(service), error: String(err) });
      return false;
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  #refuse(req: IncomingMessage, socket: Duplex, status: 401 | 404 | 503, message: string, joined?: () => void): void {
    joined?.();
    this.#stats.refusedUpgrades++;
    this.#rare('refused', 'warn', 'refused a participant connection', { status, message, address: req.socket.remoteAddress });
    const body = `${message}\n`;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // A peer that reads neither the answer nor closes its end does not keep the socket for long.
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  #connected(ws: WebSocket, service: string, joined: () => void): void {
    const c: Connection = {
      id: ++this.#seq,
      ws,
      service,
      targets: new Set(),
      ready: false,
      alive: true,
      closing: false,
      inflight: new Set(),
      timer: undefined,
      joined,
      invalid: 0,
      invalidSince: this.#clock.now(),
      turnFrames: 0,
      backlog: [],
      backlogAt: 0,
    };
    this.#connections.add(c);
    c.timer = this.#clock.setTimeout(() => {
      if (!c.ready) this.#fail(c, CloseCode.PolicyViolation, FrameError.HelloTimeout, `no hello within ${this.#opts.helloTimeoutMs} ms`);
    }, this.#opts.helloTimeoutMs);
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('message', (data, isBinary) => this.#receive(c, data, isBinary));
    ws.on('error', (err) => this.#rare('socket', 'warn', 'participant connection error', { service, connection: c.id, error: err.message }));
    ws.on('close', (code) => this.#disconnected(c, code));
  }

  /** Handles a frame now, or queues it for a later turn when the connection is over its budget. */
  #receive(c: Connection, data: RawData, isBinary: boolean): void {
    if (c.closing) return;
    if (c.backlogAt < c.backlog.length || c.turnFrames >= this.#opts.maxFramesPerTurn) {
      // ws still emits the rest of the chunk it is parsing: at most one socket read's worth.
      c.backlog.push({ data, isBinary });
      if (!this.#throttled.has(c)) {
        this.#throttled.add(c);
        this.#stats.throttled++;
        c.ws.pause();
      }
      this.#endTurnSoon();
      return;
    }
    this.#handle(c, data, isBinary);
  }

  #endTurnSoon(): void {
    if (this.#turnEnding) return;
    this.#turnEnding = true;
    setImmediate(this.#endTurn);
  }

  /** A new turn: every budget is full again; paused connections work off their backlog, then read again. */
  readonly #endTurn = (): void => {
    this.#turnEnding = false;
    for (const c of this.#busy) c.turnFrames = 0;
    this.#busy.clear();
    for (const c of this.#throttled) {
      while (!c.closing && c.backlogAt < c.backlog.length && c.turnFrames < this.#opts.maxFramesPerTurn) {
        const frame = c.backlog[c.backlogAt]!;
        c.backlog[c.backlogAt++] = undefined;
        this.#handle(c, frame.data, frame.isBinary);
      }
      if (c.closing || c.backlogAt >= c.backlog.length) {
        c.backlog = [];
        c.backlogAt = 0;
        this.#throttled.delete(c);
        if (!c.closing) c.ws.resume();
      }
    }
  };

  #handle(c: Connection, data: RawData, isBinary: boolean): void {
    if (c.closing) return;
    if (c.turnFrames++ === 0) {
      this.#busy.add(c);
      this.#endTurnSoon();
    }
    if (isBinary) return this.#invalid(c, { type: 'error', code: FrameError.Invalid, message: 'binary frames are not part of the protocol; send JSON text' });
    const parsed = parseFrame(ParticipantFrame, data.toString());
    if (!parsed.ok) return this.#invalid(c, parsed.error);
    const frame = parsed.frame;
    if (frame.type === 'hello') {
      if (c.ready) return this.#invalid(c, { type: 'error', code: FrameError.HelloRepeated, message: 'this connection said hello already; open another one to declare other targets' });
      return this.#hello(c, frame);
    }
    if (!c.ready) return this.#invalid(c, { type: 'error', code: FrameError.HelloRequired, message: 'send hello before anything else' });
    this.#response(c, frame);
  }

  #hello(c: Connection, hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.#fail(c, CloseCode.ProtocolError, FrameError.ProtocolVersion, `protocol ${hello.protocol} is not supported; this orchestrator speaks ${PROTOCOL_VERSION}`);
    }
    if (hello.service !== c.service) {
      return this.#fail(c, CloseCode.PolicyViolation, FrameError.WrongService, `hello says service "${preview(hello.service)}" but the connection authenticated as "${c.service}"`);
    }
    const foreign = hello.targets.filter((t) => t !== c.service && !t.startsWith(`${c.service}.`));
    if (foreign.length) {
      const named = foreign.slice(0, 3).map((t) => `"${preview(t, 64)}"`).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
      return this.#fail(c, CloseCode.PolicyViolation, FrameError.ForeignTarget, `service "${c.service}" may only handle its own targets ("${c.service}" or "${c.service}.…"), not ${named}`);
    }
    this.#clock.clearTimeout(c.timer);
    c.targets = new Set(hello.targets);
    c.ready = true;
    c.joined();
    this.#sendFrame(c, { type: 'welcome', protocol: PROTOCOL_VERSION, service: c.service, heartbeatMs: this.#opts.heartbeatMs, maxPayloadBytes: this.#opts.maxPayloadBytes });
    this.#log.info?.('participant connected', { service: c.service, connection: c.id, targets: hello.targets.slice(0, 20), instance: hello.instance });
    this.#flushHeld();
  }

  /** An answer from a participant: a `response` to a request, a `vote` on a reserve, an `ack` of a commit or reject. */
  #response(c: Connection, frame: ResponseFrame | VoteFrame | AckFrame): void {
    const entry = this.#inflight.get(frame.requestId);
    if (!entry) {
      const requestId = preview(frame.requestId);
      this.#rare('unexpected', 'info', 'ignored a response to no request in flight (late, duplicate or unknown)', { requestId, service: c.service });
      return this.#reject(c, { type: 'error', code: FrameError.ResponseUnexpected, message: 'no request with this id is waiting for an answer', requestId });
    }
    if (entry.connection.service !== c.service) {
      const requestId = preview(frame.requestId);
      this.#rare('wrong-service', 'warn', 'ignored a response from a service the request was not sent to', { requestId, from: c.service, to: entry.connection.service });
      return this.#invalid(c, { type: 'error', code: FrameError.ResponseWrongService, message: `this request was sent to service "${entry.connection.service}"`, requestId });
    }
    const expected = answerTo(entry.request);
    if (frame.type !== expected) {
      return this.#invalid(c, { type: 'error', code: FrameError.AnswerMismatch, message: `a ${entry.request.phase} is answered with "${expected}", not "${frame.type}"`, requestId: preview(frame.requestId) });
    }
    this.#inflight.delete(frame.requestId);
    entry.connection.inflight.delete(frame.requestId);
    this.#stats.responses++;
    if (this.#answerListeners.size) this.#toldAnswer(c, entry, frame);
    if (frame.type === 'response') {
      this.#listener?.({ requestId: frame.requestId, status: frame.status, content: (frame.content ?? null) as never, relatedServices: frame.relatedServices ?? [], service: c.service });
    } else {
      // A vote answers a reserve (yes: 200, no: 400, a failed hook: 500); an ack a commit or reject (failed: 500).
      const status = frame.type === 'vote' ? (frame.vote === 'yes' ? 200 : frame.failed === true ? 500 : 400) : frame.ok === false ? 500 : 200;
      this.#listener?.({ requestId: frame.requestId, status, content: (frame.reason ?? null) as never, relatedServices: [], service: c.service });
    }
  }

  #toldAnswer(c: Connection, entry: Inflight, frame: ResponseFrame | VoteFrame | AckFrame): void {
    const status = frame.type === 'response' ? frame.status : frame.type === 'vote' ? (frame.vote === 'yes' ? 200 : frame.failed === true ? 500 : 400) : frame.ok === false ? 500 : 200;
    const answer: BrokerAnswer = { service: c.service, sagaName: entry.request.sagaName, phase: entry.request.phase, status, latencyMs: Math.max(0, this.#clock.now() - entry.sentAt) };
    for (const listener of this.#answerListeners) {
      try {
        listener(answer);
      } catch {
        // Metrics must not break delivery.
      }
    }
  }

  #disconnected(c: Connection, code: number): void {
    this.#clock.clearTimeout(c.timer);
    c.closing = true;
    c.joined();
    c.backlog = [];
    this.#connections.delete(c);
    this.#throttled.delete(c);
    this.#busy.delete(c);
    if (c.ready) this.#log.info?.('participant disconnected', { service: c.service, connection: c.id, code });
    if (this.#closed) return;
    // What went out on this connection and is unanswered goes out again, elsewhere or later.
    for (const requestId of c.inflight) {
      const entry = this.#inflight.get(requestId);
      if (!entry || entry.connection !== c) continue;
      this.#inflight.delete(requestId);
      this.#stats.resent++;
      this.send(entry.request);
    }
  }

  #usable(c: Connection): boolean {
    return c.ready && !c.closing && c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount <= this.#opts.maxBufferedBytes;
  }

  /** Whether `c` can take the request now: usable, and it declared the target (or its whole service); for a transaction's message, of its service. */
  #takes(c: Connection, request: OutgoingRequest): boolean {
    if (!this.#usable(c)) return false;
    const { target } = request;
    return isTransactionPhase(request.phase) ? c.service === target : c.targets.has(target) || c.targets.has(serviceOf(target));
  }

  /** Whether a participant connected here would take the request now (a cluster sends it elsewhere otherwise). */
  canDeliver(request: OutgoingRequest): boolean {
    for (const c of this.#connections) if (this.#takes(c, request)) return true;
    return false;
  }

  /** A connection for the request: one that declared its target (or its whole service); any of the service for a transaction's message. */
  #pick(request: OutgoingRequest): Connection | undefined {
    const { target } = request;
    const candidates = [...this.#connections].filter((c) => this.#takes(c, request));
    if (!candidates.length) return undefined;
    const turn = this.#roundRobin.get(target) ?? 0;
    this.#roundRobin.set(target, turn + 1);
    return candidates[turn % candidates.length];
  }

  #deliver(c: Connection, request: OutgoingRequest): void {
    this.#inflight.set(request.requestId, { request, connection: c, sentAt: this.#clock.now() });
    c.inflight.add(request.requestId);
    this.#stats.sent++;
    if (isTransactionPhase(request.phase)) {
      const frame: TransactionFrame = {
        type: request.phase,
        requestId: request.requestId,
        transactionId: request.uuid,
        sagaName: request.sagaName,
        attempt: request.attempt,
        deadline: request.deadline,
      };
      this.#sendFrame(c, frame);
      return;
    }
    const frame: RequestFrame = {
      type: 'request',
      requestId: request.requestId,
      uuid: request.uuid,
      sagaName: request.sagaName,
      step: request.step,
      phase: request.phase as RequestFrame['phase'],
      attempt: request.attempt,
      target: request.target,
      content: request.content,
      deadline: request.deadline,
      ...(request.user ? { user: request.user } : {}),
    };
    this.#sendFrame(c, frame);
  }

  #hold(request: OutgoingRequest): void {
    if (this.#held.has(request.requestId)) return;
    this.#held.set(request.requestId, request);
    if (this.#held.size <= this.#opts.maxHeldRequests) return;
    const [oldest, dropped] = this.#held.entries().next().value!;
    this.#held.delete(oldest);
    this.#stats.droppedHeld++;
    this.#rare('dropped-held', 'warn', 'dropped a held request: too many are waiting for participants (its step will time out and retry)', { requestId: oldest, target: dropped.target });
  }

  #flushHeld(): void {
    const now = this.#clock.now();
    for (const [requestId, request] of this.#held) {
      if (request.deadline !== null && request.deadline <= now) {
        this.#held.delete(requestId);
        this.#stats.expiredHeld++;
        continue;
      }
      const c = this.#pick(request);
      if (!c) continue;
      this.#held.delete(requestId);
      this.#deliver(c, request);
    }
  }

  readonly #beat = (): void => {
    if (this.#closed) return;
    this.#beatTimer = this.#clock.setTimeout(this.#beat, this.#opts.heartbeatMs);
    // After a stall of the event loop longer than a heartbeat, pongs that arrived meanwhile are
    // not read yet: judge no one this round, or every healthy peer would be dropped at once. The
    // same when no turn has passed since the last beat (a fake clock moved two beats at once).
    const now = this.#clock.now();
    const stalled = now - this.#lastBeat > this.#opts.heartbeatMs * 1.5 || !this.#turnSinceBeat;
    this.#lastBeat = now;
    this.#turnSinceBeat = false;
    setImmediate(() => {
      this.#turnSinceBeat = true;
    });
    for (const c of this.#connections) {
      if (c.closing) continue;
      // A peer that does not read does not answer pings either: say why before judging it dead.
      if (c.ws.bufferedAmount > this.#opts.maxBufferedBytes) {
        this.#close(c, CloseCode.TryAgainLater, FrameError.SendBufferFull, 'send buffer over the limit', 'closed a participant connection that does not read', { buffered: c.ws.bufferedAmount });
        continue;
      }
      if (!c.alive && !stalled) {
        this.#rare('dead', 'warn', 'closed a participant connection that missed a heartbeat', { service: c.service, connection: c.id });
        c.closing = true;
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
    this.#flushHeld();
    this.#forgetExpired(now);
  };

  /**
   * Requests in flight whose deadline passed more than a minute ago are forgotten: their step has
   * timed out and moved on (a retry goes out with a new id), so nothing would re-send them, and a
   * participant that never answers must not make the broker hold them for ever. An answer after
   * that is refused as unexpected.
   */
  #forgetExpired(now: number): void {
    const before = now - EXPIRED_INFLIGHT_GRACE_MS;
    for (const [requestId, entry] of this.#inflight) {
      const { deadline } = entry.request;
      if (deadline === null || deadline > before) continue;
      this.#inflight.delete(requestId);
      entry.connection.inflight.delete(requestId);
      this.#stats.expiredInflight++;
    }
  }

  /** A frame that breaks the protocol: refused, and counted against `maxInvalidFrames`. */
  #invalid(c: Connection, error: ErrorFrame): void {
    const now = this.#clock.now();
    if (now - c.invalidSince >= this.#opts.invalidFrameWindowMs) {
      c.invalidSince = now;
      c.invalid = 0;
    }
    if (++c.invalid > this.#opts.maxInvalidFrames) {
      return this.#fail(c, CloseCode.PolicyViolation, FrameError.TooManyInvalidFrames, `more than ${this.#opts.maxInvalidFrames} invalid frames within ${this.#opts.invalidFrameWindowMs} ms`);
    }
    this.#reject(c, error);
  }

  /** Answers a refused frame, unless the peer is not reading: then the answer is dropped and it is closed. */
  #reject(c: Connection, error: ErrorFrame): void {
    this.#stats.rejectedFrames++;
    if (c.ws.bufferedAmount > this.#opts.maxBufferedBytes) {
      this.#stats.droppedErrorFrames++;
      return this.#close(c, CloseCode.TryAgainLater, FrameError.SendBufferFull, 'send buffer over the limit', 'closed a participant connection that does not read', { buffered: c.ws.bufferedAmount });
    }
    this.#sendFrame(c, error);
  }

  #fail(c: Connection, code: number, errorCode: FrameErrorCode, message: string): void {
    this.#reject(c, { type: 'error', code: errorCode, message });
    this.#close(c, code, errorCode, message);
  }

  /** Sends a close frame, and cuts the socket if the peer has not closed its end after a grace. */
  #close(c: Connection, code: number, errorCode: FrameErrorCode, reason: string, logMessage = 'closed a participant connection', fields: LogFields = {}): void {
    if (c.closing) return;
    c.closing = true;
    this.#rare(`close:${errorCode}`, 'warn', logMessage, { service: c.service, connection: c.id, code: errorCode, message: reason, ...fields });
    c.ws.close(code, closeReason(reason));
    this.#clock.clearTimeout(c.timer);
    c.timer = this.#clock.setTimeout(() => c.ws.terminate(), CLOSE_GRACE_MS);
  }

  #sendFrame(c: Connection, frame: object): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    this.#cork(c);
    c.ws.send(JSON.stringify(frame));
  }

  /**
   * Holds a connection's writes until the end of this turn of the event loop, so that the frames
   * of every execution that moves on in this turn leave in one system call, not one each.
   */
  #cork(c: Connection): void {
    const socket = (c.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket || this.#corked.has(socket)) return;
    if (!this.#corked.size) setImmediate(this.#uncork);
    socket.cork();
    this.#corked.add(socket);
  }

  readonly #uncork = (): void => {
    for (const socket of this.#corked) socket.uncork();
    this.#corked.clear();
  };

  /** Logs a line a peer can cause at most once per kind per interval; the next says how many were left out. */
  #rare(kind: string, level: keyof SagaLogger, message: string, fields: LogFields): void {
    const now = this.#clock.now();
    const last = this.#logged.get(kind);
    if (last && now - last.at < LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    this.#log[level]?.(message, last?.suppressed ? { ...fields, suppressed: last.suppressed } : fields);
    this.#logged.set(kind, { at: now, suppressed: 0 });
  }
}

function createServer(tls: HttpsServerOptions | undefined): HttpServer | HttpsServer {
  const answer = (_req: IncomingMessage, res: http.ServerResponse) => {
    // Another request listener (the admin API) answers what is its own, and this the rest.
    if (claimedResponses.has(res) || res.headersSent) return;
    res.writeHead(426, { 'content-type': 'text/plain' }).end('sagachart participants connect here by WebSocket.\n');
  };
  if (!tls) return http.createServer(answer);
  try {
    return https.createServer(tls, answer);
  } catch (err) {
    throw new TypeError(`WebSocketBroker.listen: option "tls" could not be used: ${(err as Error).message}. Pass PEM text or Buffers for key and cert.`);
  }
}

function checkAuth(auth: ParticipantAuth | undefined): void {
  if (typeof auth === 'function') return;
  if (!auth || typeof auth !== 'object') {
    throw new TypeError('WebSocketBroker.listen needs `auth`: a token per service ({ inventory: "secret" }) or a function (service, token) => boolean.');
  }
  for (const [service, token] of Object.entries(auth)) {
    if (typeof token !== 'string' || !token) throw new TypeError(`WebSocketBroker.listen: option "auth.${service}" must be a non-empty token string.`);
  }
}

function optionError(issue: z.core.$ZodIssue): TypeError {
  if (issue.code === 'unrecognized_keys') {
    return new TypeError(`WebSocketBroker.listen: unknown option ${issue.keys.map((k) => `"${k}"`).join(', ')}; see WebSocketBrokerOptions for the options there are.`);
  }
  return new TypeError(`WebSocketBroker.listen: option "${issue.path.join('.')}" ${issue.message}.`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sameSecret(expected: unknown, given: string): boolean {
  if (typeof expected !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The frame that answers a request: `response` to a step's, `vote` to a reserve, `ack` to a commit or reject. */
function answerTo(request: OutgoingRequest): 'response' | 'vote' | 'ack' {
  if (!isTransactionPhase(request.phase)) return 'response';
  return request.phase === 'reserve' ? 'vote' : 'ack';
}
