import { createHash, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Saga } from '../definition/saga.js';
import { SagaError } from '../errors/saga-error.js';
import type { SagaLogger } from '../logger.js';
import { defaultLogger } from '../logger.js';
import { SAGA_OPERATOR_ACTIONS, type SagaActionInput, type SagaActionResult, type SagaManager, type SagaOperatorAction } from '../manager/saga-manager.js';
import type { SagaListFilter } from '../repositories/saga-repository.js';
import type { SagaExecution } from '../runtime/saga-execution.js';
import { SagaStatus, SagaStepStatus } from '../status.js';
import { asyncApiDocument } from '../transport/asyncapi.js';
import { claimedResponses } from '../transport/http-claims.js';
import type { WebSocketBroker } from '../transport/websocket-broker.js';
import { activeStateIds, ChartCache } from './chart.js';
import type { InspectionStream } from './inspection-stream.js';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, MetricsRegistry } from './metrics.js';

/** Options of an {@link AdminApi}. */
export interface AdminApiOptions {
  manager: SagaManager;
  /** The broker the manager sends through: its connections, requests in flight and answer latency are shown. */
  broker?: WebSocketBroker;
  /** Operators' bearer token(s): every `/admin/api/` request must carry `Authorization: Bearer <token>`. */
  token: string | readonly string[];
  /** Sends actions on executions another orchestrator owns to it (`SagaCluster.actionRouter`). @defaultValue every action runs here */
  router?: AdminActionRouter;
  /** The manager's inspection events, streamed to the dashboard (see {@link InspectionStream}). */
  inspection?: InspectionStream;
  /** `token`: `/metrics` needs the bearer token too; `public`: it does not; `off`: not served. @defaultValue 'token' */
  metrics?: 'token' | 'public' | 'off';
  /** Largest request body accepted. @defaultValue 65536 */
  maxBodyBytes?: number;
  /** How long an action's answer waits for the execution to settle before answering 202. @defaultValue 10000 */
  actionWaitMs?: number;
  /** Event streams open at once; more are refused with 503. @defaultValue 64 */
  maxStreams?: number;
  logger?: SagaLogger;
}

/** An error answer: `{ error: { code, message } }` with an HTTP status. */
class AdminError extends SagaError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

const ACTIONS = SAGA_OPERATOR_ACTIONS;
type AdminAction = SagaOperatorAction;

/**
 * Where operator actions run when several orchestrators share the executions (`SagaCluster`):
 * an execution another instance owns has its action sent there.
 */
export interface AdminActionRouter {
  owns(uuid: string): boolean;
  /** Runs the action on the execution's owner; resolves with its result (the execution as JSON or a view). */
  act(uuid: string, action: SagaOperatorAction, input: SagaActionInput): Promise<SagaActionResult | RoutedActionResult>;
  /** What the overview shows of the cluster: this instance, the live members, routing figures. */
  describe?(): object;
}

/** An action's result as another instance sent it back. */
export interface RoutedActionResult {
  execution: ReturnType<SagaExecution['toJSON']>;
  outcome: { code: string; message: string } | null;
}

const toJson = (execution: SagaExecution | RoutedActionResult['execution']) => ('toJSON' in execution && typeof execution.toJSON === 'function' ? execution.toJSON() : execution);

const STATUSES = Object.values(SagaStatus) as [SagaStatus, ...SagaStatus[]];
const time = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))]);
const listQuery = z.strictObject({
  status: z
    .string()
    .max(200)
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(STATUSES)).min(1))
    .optional(),
  saga: z.string().min(1).max(200).optional(),
  createdAfter: time.optional(),
  createdBefore: time.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(2000).optional(),
});
const actionBody = z.strictObject({
  step: z.string().min(1).max(1000).optional(),
  service: z.string().min(1).max(200).optional(),
  note: z.string().max(2000).optional(),
});
const startBody = z.strictObject({
  saga: z.string().min(1).max(200),
  context: z.record(z.string(), z.unknown()).optional(),
  user: z.string().min(1).max(200).optional(),
  uuid: z.string().min(1).max(200).optional(),
  autocommit: z.boolean().optional(),
});
const actionQuery = z.strictObject({ wait: z.coerce.number().int().min(0).max(120_000).optional() });
const eventsQuery = z.strictObject({ types: z.string().max(100).optional() });
const uuidParam = z.string().min(1).max(200);

/** Why an execution's view cannot be built here; its stored record is shown instead. */
const UNREADABLE = new Set(['SAGA_NOT_REGISTERED', 'SAGA_DEFINITION_MISMATCH', 'SAGA_SNAPSHOT_INVALID']);

const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png',
};
const HEARTBEAT_MS = 15_000;
/** An event stream whose peer does not read is dropped past this many queued bytes. */
const MAX_STREAM_BUFFER = 1 << 20;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The operators' HTTP API, dashboard and metrics of one orchestrator: served on the broker's
 * server (`AdminApi.attach`) or a port of its own (`AdminApi.listen`). Every action runs in this
 * process, which holds the participants' connections, and is recorded on the execution.
 *
 * Routes (JSON; errors are `{ error: { code, message } }`):
 * - `GET  /admin/` the dashboard (its assets carry no data; the data needs the token)
 * - `GET  /admin/api/overview` counts per status, executions in memory, broker and sagas
 * - `GET  /admin/api/executions?status=&saga=&createdAfter=&createdBefore=&limit=&cursor=`
 * - `POST /admin/api/executions` `{ saga, context?, user?, uuid?, autocommit? }` starts one
 * - `GET  /admin/api/executions/:uuid` the execution, its outbox, deadline and chart state
 * - `POST /admin/api/executions/:uuid/:action` `{ step?, service?, note? }`, action one of
 *   `abort`, `retry-step`, `retry-compensation`, `resolve-compensation`, `resolve-transaction`, `commit`, `reject`
 * - `GET  /admin/api/sagas`, `GET /admin/api/sagas/:name/:hash/chart`
 * - `GET  /admin/api/events` server-sent events: `store` and `inspect`
 * - `GET  /admin/api/protocol` the participant protocol (AsyncAPI)
 * - `GET  /metrics` Prometheus text
 *
 * @example
 * ```ts
 * const broker = await WebSocketBroker.listen({ port: 7400, auth });
 * const manager = new SagaManager({ broker, repository, sagas });
 * const admin = AdminApi.attach(broker.server, { manager, broker, token: process.env.ADMIN_TOKEN! });
 * ```
 */
export class AdminApi {
  readonly #manager: SagaManager;
  readonly #broker: WebSocketBroker | undefined;
  readonly #tokens: Buffer[];
  readonly #opts: Required<Pick<AdminApiOptions, 'metrics' | 'maxBodyBytes' | 'actionWaitMs' | 'maxStreams'>>;
  readonly #log: SagaLogger;
  readonly #charts = new ChartCache();
  readonly #metrics = new MetricsRegistry();
  readonly #streams = new Set<ServerResponse>();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #storeSeconds: Histogram;
  readonly #stores: Counter;
  readonly #ended: Counter;
  readonly #steps: Counter;
  readonly #answerSeconds: Histogram;
  readonly #answers: Counter;
  readonly #inspection: InspectionStream | undefined;
  readonly #router: AdminActionRouter | undefined;
  #server: HttpServer | HttpsServer | undefined;
  #ownsServer = false;
  #protocol: string | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: AdminApiOptions) {
    const tokens = typeof options.token === 'string' ? [options.token] : [...options.token];
    if (!tokens.length || tokens.some((t) => typeof t !== 'string' || t.length < 8)) {
      throw new TypeError('AdminApi: give operators a token of at least 8 characters (`token`); the admin API is never served without one.');
    }
    if (tokens.some((t) => t.length < 16)) (options.logger ?? defaultLogger).warn?.('an admin token is shorter than 16 characters: use a long random one (e.g. openssl rand -hex 32)');
    this.#manager = options.manager;
    this.#broker = options.broker;
    this.#tokens = tokens.map(digest);
    this.#inspection = options.inspection;
    this.#router = options.router;
    this.#log = options.logger ?? defaultLogger;
    this.#opts = {
      metrics: options.metrics ?? 'token',
      maxBodyBytes: options.maxBodyBytes ?? 65_536,
      actionWaitMs: options.actionWaitMs ?? 10_000,
      maxStreams: options.maxStreams ?? 64,
    };
    const m = this.#metrics;
    m.add(
      new Gauge('sagachart_executions', 'Executions in the repository, by status (read when scraped).', () => {
        const counts = this.#lastCounts;
        return counts ? Object.entries(counts).map(([status, value]) => ({ labels: { status }, value })) : [];
      }),
    );
    m.add(new Gauge('sagachart_executions_in_memory', 'Executions held in memory by this manager.', () => [{ value: this.#manager.liveCount }]));
    this.#ended = m.add(new Counter('sagachart_executions_ended_total', 'Executions this manager stored as ended, by saga and status.'));
    this.#steps = m.add(new Counter('sagachart_steps_total', 'Steps of the executions this manager ended, by saga and outcome (started, failed, compensated).'));
    this.#stores = m.add(new Counter('sagachart_stores_total', 'Stores of executions, by outcome (stored, conflict, failed).'));
    this.#storeSeconds = m.add(new Histogram('sagachart_store_seconds', 'How long a store of an execution took.', LATENCY_BUCKETS));
    this.#answers = m.add(new Counter('sagachart_responses_total', 'Answers from participants, by service, phase and status.'));
    this.#answerSeconds = m.add(new Histogram('sagachart_response_seconds', 'From a request going out to its answer, by service and phase.', LATENCY_BUCKETS));
    const broker = this.#broker;
    if (broker) {
      m.add(new Gauge('sagachart_requests_in_flight', 'Requests sent to participants and not answered yet.', () => [{ value: broker.stats.inflight }]));
      m.add(new Gauge('sagachart_requests_held', 'Requests waiting for a participant of their service to connect.', () => [{ value: broker.stats.held }]));
      m.add(new Gauge('sagachart_participant_connections', 'Participant connections open.', () => [{ value: broker.stats.connections }]));
      m.add(new Gauge('sagachart_rejected_frames', 'Frames from participants refused since start.', () => [{ value: broker.stats.rejectedFrames }]));
      this.#unsubscribe.push(
        broker.onAnswer((a) => {
          this.#answers.inc({ service: a.service, phase: a.phase, status: String(a.status) });
          this.#answerSeconds.observe({ service: a.service, phase: a.phase }, a.latencyMs / 1000);
        }),
      );
    }
    this.#unsubscribe.push(
      this.#manager.onStore((e) => {
        this.#stores.inc({ outcome: e.outcome });
        this.#storeSeconds.observe({}, e.storeMs / 1000);
        if (e.outcome === 'stored' && (e.status === SagaStatus.Finished || e.status === SagaStatus.Errored)) this.#countEnded(e.sagaName, e.status, e.view());
        if (this.#streams.size) this.#broadcast('store', { uuid: e.uuid, sagaName: e.sagaName, status: e.status, version: e.version, outcome: e.outcome });
      }),
    );
    if (this.#inspection) this.#unsubscribe.push(this.#inspection.listen((s) => this.#streams.size && this.#broadcast('inspect', s)));
  }

  #lastCounts: Record<string, number> | null = null;

  /** Serves the admin API on `server` (the broker's: `broker.server`), beside what it serves already. */
  static attach(server: HttpServer | HttpsServer, options: AdminApiOptions): AdminApi {
    const api = new AdminApi(options);
    api.#server = server;
    server.prependListener('request', api.#onRequest);
    return api;
  }

  /** Serves the admin API on a port of its own. @defaultValue host '127.0.0.1', port 0 (a free one; read `api.port`) */
  static async listen(options: AdminApiOptions & { port?: number; host?: string }): Promise<AdminApi> {
    const api = new AdminApi(options);
    const server = http.createServer((req, res) => {
      if (!claimedResponses.has(res) && !res.headersSent) api.#send(res, 404, { error: { code: 'SAGA_ADMIN_NOT_FOUND', message: `nothing at ${req.url ?? ''}; the admin API is under /admin/ and metrics at /metrics` } });
    });
    server.prependListener('request', api.#onRequest);
    api.#server = server;
    api.#ownsServer = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return api;
  }

  /** The port it listens on (its own, or the server's it is attached to). */
  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** The metrics, as `/metrics` serves them. */
  async metricsText(): Promise<string> {
    this.#lastCounts = await this.#manager.counts().catch(() => null);
    return this.#metrics.render();
  }

  /** Stops serving: detaches from the server (closes it if it is its own) and ends the event streams. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of this.#unsubscribe) stop();
    clearInterval(this.#heartbeat);
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    const server = this.#server;
    if (!server) return;
    server.off('request', this.#onRequest);
    if (this.#ownsServer) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    if (!(url === '/admin' || url.startsWith('/admin/') || url.startsWith('/admin?') || url === '/metrics' || url.startsWith('/metrics?'))) return;
    // Answered here: the broker's own listener leaves it be.
    claimedResponses.add(res);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cache-control', 'no-store');
    this.#route(req, res).catch((err: unknown) => this.#fail(res, err));
  };

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#closed) throw new AdminError(503, 'SAGA_ADMIN_CLOSED', 'the admin API is closed');
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/metrics') {
      if (this.#opts.metrics === 'off') throw new AdminError(404, 'SAGA_ADMIN_NOT_FOUND', 'metrics are not served here (metrics: "off")');
      if (this.#opts.metrics === 'token') this.#authenticate(req);
      allow(method, ['GET', 'HEAD']);
      const text = await this.metricsText();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === '/admin') {
      res.writeHead(308, { location: '/admin/' }).end();
      return;
    }
    if (!path.startsWith('/admin/api/')) return this.#asset(req, res, path.slice('/admin/'.length));
    this.#authenticate(req);
    const parts = path
      .slice('/admin/api/'.length)
      .split('/')
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          throw new AdminError(400, 'SAGA_ADMIN_BAD_REQUEST', 'the path is not valid percent-encoding');
        }
      });
    const query = Object.fromEntries(url.searchParams);
    const [resource, id, action, ...rest] = parts;
    if (resource === 'overview' && parts.length === 1) {
      allow(method, ['GET']);
      return this.#send(res, 200, await this.#overview());
    }
    if (resource === 'executions' && parts.length === 1) {
      allow(method, ['GET', 'POST']);
      if (method === 'POST') return this.#start(res, parse(startBody, await this.#body(req), 'body'));
      return this.#send(res, 200, await this.#list(parse(listQuery, query, 'query')));
    }
    if (resource === 'executions' && id !== undefined && parts.length === 2) {
      allow(method, ['GET']);
      return this.#send(res, 200, await this.#describe(parse(uuidParam, id, 'uuid')));
    }
    if (resource === 'executions' && id !== undefined && action !== undefined && parts.length === 3) {
      allow(method, ['POST']);
      if (!(ACTIONS as readonly string[]).includes(action)) throw new AdminError(404, 'SAGA_ADMIN_NOT_FOUND', `no action "${action}"; the actions are ${ACTIONS.join(', ')}`);
      const body = parse(actionBody, await this.#body(req), 'body');
      const { wait } = parse(actionQuery, query, 'query');
      return this.#act(res, parse(uuidParam, id, 'uuid'), action as AdminAction, body, wait ?? this.#opts.actionWaitMs);
    }
    if (resource === 'sagas' && parts.length === 1) {
      allow(method, ['GET']);
      return this.#send(res, 200, { items: this.#sagas() });
    }
    if (resource === 'sagas' && id !== undefined && action !== undefined && rest.length === 1 && rest[0] === 'chart') {
      allow(method, ['GET']);
      return this.#send(res, 200, this.#charts.get(this.#saga(id, action)).chart);
    }
    if (resource === 'events' && parts.length === 1) {
      allow(method, ['GET']);
      return this.#stream(req, res, parse(eventsQuery, query, 'query'));
    }
    if (resource === 'protocol' && parts.length === 1) {
      allow(method, ['GET']);
      this.#protocol ??= JSON.stringify(asyncApiDocument());
      res.writeHead(200, { 'content-type': 'application/json' }).end(this.#protocol);
      return;
    }
    throw new AdminError(404, 'SAGA_ADMIN_NOT_FOUND', `no route ${method} ${path}`);
  }

  #authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const given = match?.[1];
    if (!given) throw new AdminError(401, 'SAGA_ADMIN_UNAUTHORIZED', 'send the operators\' token as "Authorization: Bearer <token>"');
    const d = digest(given);
    if (!this.#tokens.some((t) => timingSafeEqual(t, d))) throw new AdminError(401, 'SAGA_ADMIN_UNAUTHORIZED', 'the token is wrong');
  }

  async #overview() {
    const broker = this.#broker;
    return {
      counts: await this.#manager.counts(),
      manager: this.#manager.stats(),
      broker: broker ? { ...broker.stats, services: broker.connectedServices() } : null,
      sagas: this.#sagas(),
      cluster: this.#router?.describe?.() ?? null,
    };
  }

  #sagas() {
    return this.#manager.definitions().map((s) => ({ name: s.name, hash: s.hash, steps: s.steps.length, chart: `/admin/api/sagas/${encodeURIComponent(s.name)}/${s.hash}/chart` }));
  }

  #saga(name: string, hash: string): Saga<object> {
    const saga = this.#manager.definitions().find((s) => s.name === name && s.hash === hash);
    if (!saga) throw new AdminError(404, 'SAGA_NOT_REGISTERED', `no saga "${name}" with definition hash ${hash} is registered with this orchestrator`);
    return saga;
  }

  async #list(q: z.infer<typeof listQuery>) {
    const filter: SagaListFilter = {
      ...(q.status ? { status: q.status } : {}),
      ...(q.saga ? { sagaName: q.saga } : {}),
      ...(q.createdAfter !== undefined ? { createdAfter: q.createdAfter } : {}),
      ...(q.createdBefore !== undefined ? { createdBefore: q.createdBefore } : {}),
      limit: q.limit ?? 50,
      ...(q.cursor ? { cursor: q.cursor } : {}),
    };
    return this.#manager.list(filter);
  }

  async #describe(uuid: string) {
    let details: Awaited<ReturnType<SagaManager['describe']>>;
    try {
      details = await this.#manager.describe(uuid);
    } catch (err) {
      if (!(err instanceof SagaError) || !UNREADABLE.has(err.code)) throw err;
      return this.#unreadable(uuid, err);
    }
    const { execution } = details;
    const saga = this.#manager.definitions().find((s) => s.name === execution.sagaName && s.hash === execution.definitionHash);
    const machine = saga ? this.#charts.get(saga).machine : undefined;
    return {
      execution: execution.toJSON(),
      outbox: details.outbox,
      timer: details.timer,
      version: details.version,
      updatedAt: details.updatedAt,
      value: details.value,
      active: machine ? activeStateIds(machine, details.value) : [],
      chart: saga ? `/admin/api/sagas/${encodeURIComponent(saga.name)}/${saga.hash}/chart` : null,
    };
  }

  /** Starts an execution of the last registered version of a saga; answers once it waits or has ended. */
  async #start(res: ServerResponse, body: z.infer<typeof startBody>): Promise<void> {
    const saga = [...this.#manager.definitions()].reverse().find((s) => s.name === body.saga);
    if (!saga) throw new AdminError(404, 'SAGA_NOT_REGISTERED', `no saga "${body.saga}" is registered with this orchestrator; the sagas are ${this.#sagas().map((s) => s.name).join(', ') || 'none'}`);
    this.#log.info?.('operator started an execution', { saga: saga.name, ...(body.user ? { user: body.user } : {}) });
    const execution = await this.#manager.run(saga, {
      context: body.context ?? {},
      pauseOnDisk: true,
      raiseOnError: false,
      ...(body.user ? { user: body.user } : {}),
      ...(body.uuid ? { uuid: body.uuid } : {}),
      ...(body.autocommit !== undefined ? { autocommit: body.autocommit } : {}),
    });
    this.#send(res, 201, { execution: execution.toJSON() });
  }

  /**
   * An execution this orchestrator cannot build a view of (its saga or version is not registered
   * here, or its snapshot is broken): what the repository holds of it, and why, so that an
   * operator still sees it.
   */
  async #unreadable(uuid: string, err: SagaError) {
    const record = await this.#manager.repository.load(uuid);
    if (!record) throw err;
    const { snapshot: _snapshot, outbox, timer, ...summary } = record;
    return { execution: null, record: summary, problem: { code: err.code, message: err.message }, outbox, timer, version: record.version, updatedAt: record.updatedAt, value: null, active: [], chart: null };
  }

  async #act(res: ServerResponse, uuid: string, action: AdminAction, body: z.infer<typeof actionBody>, waitMs: number): Promise<void> {
    if (action === 'resolve-transaction' && !body.service) throw new AdminError(400, 'SAGA_ADMIN_BAD_REQUEST', 'resolve-transaction needs the service whose part is resolved by hand: { "service": "..." }');
    const input: SagaActionInput = { ...(body.step ? { step: body.step } : {}), ...(body.service ? { service: body.service } : {}), ...(body.note ? { note: body.note } : {}) };
    const m = this.#manager;
    this.#log.info?.('operator action', { uuid, action, ...(body.step ? { step: body.step } : {}), ...(body.service ? { service: body.service } : {}) });
    const settled = this.#router && !this.#router.owns(uuid) ? this.#router.act(uuid, action, input) : m.act(uuid, action, input);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), waitMs)));
    try {
      const first = await Promise.race([settled, waited]);
      if (first !== 'pending') return this.#send(res, 200, { action, execution: toJson(first.execution), outcome: first.outcome });
    } finally {
      clearTimeout(timer);
    }
    settled.catch((err: unknown) => this.#log.warn?.('an operator action failed after its answer was sent', { uuid, action, error: err instanceof Error ? err.message : String(err) }));
    const execution = await m.get(uuid);
    this.#send(res, 202, { action, execution: execution.toJSON(), outcome: null, pending: true });
  }

  #countEnded(sagaName: string, status: SagaStatus, execution: SagaExecution): void {
    this.#ended.inc({ saga: sagaName, status });
    let started = 0;
    let failed = 0;
    let compensated = 0;
    for (const step of execution.steps) {
      if (step.status !== SagaStepStatus.Created || step.startedAt !== null) started++;
      if (step.error) failed++;
      if (step.compensated) compensated++;
    }
    if (started) this.#steps.inc({ saga: sagaName, outcome: 'started' }, started);
    if (failed) this.#steps.inc({ saga: sagaName, outcome: 'failed' }, failed);
    if (compensated) this.#steps.inc({ saga: sagaName, outcome: 'compensated' }, compensated);
  }

  #stream(req: IncomingMessage, res: ServerResponse, q: z.infer<typeof eventsQuery>): void {
    if (this.#streams.size >= this.#opts.maxStreams) throw new AdminError(503, 'SAGA_ADMIN_BUSY', `${this.#opts.maxStreams} event streams are open already; close one`);
    const types = new Set((q.types ?? 'store,inspect').split(',').filter(Boolean));
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`: sagachart admin events\nretry: 2000\n\n`);
    (res as ServerResponse & { sagachartTypes?: Set<string> }).sagachartTypes = types;
    this.#streams.add(res);
    this.#heartbeat ??= setInterval(() => {
      for (const s of this.#streams) s.write(': keep-alive\n\n');
    }, HEARTBEAT_MS).unref();
    const drop = () => this.#streams.delete(res);
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
  }

  #broadcast(type: string, data: object): void {
    const text = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.#streams) {
      const types = (res as ServerResponse & { sagachartTypes?: Set<string> }).sagachartTypes;
      if (types && !types.has(type)) continue;
      if (res.writableLength > MAX_STREAM_BUFFER) {
        // A peer that does not read is not buffered for without end.
        this.#streams.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  #asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    allow(req.method ?? 'GET', ['GET', 'HEAD']);
    const file = name === '' ? 'index.html' : name;
    const assets = dashboardAssets();
    const content = assets.get(file);
    if (!content) throw new AdminError(404, 'SAGA_ADMIN_NOT_FOUND', assets.size ? `no dashboard file "${file}"` : 'the dashboard is not built into this copy of sagachart');
    const ext = file.slice(file.lastIndexOf('.'));
    res.setHeader('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
    res.writeHead(200, { 'content-type': CONTENT_TYPES[ext] ?? 'application/octet-stream', 'content-length': content.length }).end(req.method === 'HEAD' ? undefined : content);
  }

  async #body(req: IncomingMessage): Promise<unknown> {
    const limit = this.#opts.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new AdminError(413, 'SAGA_ADMIN_BODY_TOO_LARGE', `the body is over ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        throw new AdminError(413, 'SAGA_ADMIN_BODY_TOO_LARGE', `the body is over ${limit} bytes`);
      }
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (!text) return {};
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) throw new AdminError(415, 'SAGA_ADMIN_BAD_REQUEST', 'send the body as JSON (content-type: application/json)');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new AdminError(400, 'SAGA_ADMIN_BAD_REQUEST', 'the body is not valid JSON');
    }
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  #fail(res: ServerResponse, err: unknown): void {
    const [status, code, message] = errorAnswer(err);
    if (status >= 500) this.#log.error?.('admin API request failed', { code, error: message });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="sagachart"');
    this.#send(res, status, { error: { code, message } });
  }
}

function errorAnswer(err: unknown): [number, string, string] {
  if (err instanceof AdminError) return [err.status, err.code, err.message];
  if (err instanceof SagaError) {
    const status: Record<string, number> = {
      SAGA_EXECUTION_NOT_FOUND: 404,
      SAGA_INVALID_STATE: 409,
      SAGA_ALREADY_RUNNING: 409,
      SAGA_CONTEXT_INVALID: 400,
      SAGA_NOT_REGISTERED: 422,
      SAGA_DEFINITION_MISMATCH: 422,
      SAGA_SNAPSHOT_INVALID: 422,
      SAGA_MANAGER_CLOSED: 503,
    };
    return [status[err.code] ?? 500, err.code, err.message];
  }
  return [500, 'SAGA_ADMIN_INTERNAL', err instanceof Error ? err.message : String(err)];
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new AdminError(405, 'SAGA_ADMIN_METHOD_NOT_ALLOWED', `use ${methods.join(' or ')} here, not ${method}`);
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${what}.${issue.path.join('.')}` : what;
  throw new AdminError(400, 'SAGA_ADMIN_BAD_REQUEST', `${where}: ${issue?.message ?? 'invalid'}`);
}

let assets: Map<string, Buffer> | undefined;
/** The dashboard's files, read once: only files that ship are served, by exact name. */
function dashboardAssets(): Map<string, Buffer> {
  if (assets) return assets;
  assets = new Map();
  try {
    for (const name of readdirSync(DASHBOARD_DIR)) if (/^[\w.-]+$/.test(name) && !name.endsWith('.ts')) assets.set(name, readFileSync(DASHBOARD_DIR + name));
  } catch {
    // Not built: the API still works; the page says so.
  }
  return assets;
}
