import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { SagaError } from '../errors/saga-error.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import type { SagaActionInput, SagaActionResult, SagaManager, SagaOperatorAction } from '../manager/saga-manager.js';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import { parseRequestId } from '../messages/request-id.js';
import type { SagaResponseData } from '../messages/saga-response.js';
import { serviceOf } from '../messages/saga-request.js';
import { newUuidV7 } from '../util/uuid-v7.js';
import type { ResponseListener, SagaBroker } from '../transport/saga-broker.js';
import type { WebSocketBroker } from '../transport/websocket-broker.js';
import type { RoutedActionResult } from '../admin/admin-api.js';
import { ClusterMembership, ownerAmong } from './membership.js';

type Client = Redis | Cluster;
type Fields = string[];
type StreamReply = Array<[key: string, entries: Array<[id: string, fields: Fields]>]> | null;

/** An operator action sent to the owner, and its answer. */
interface ActionMessage {
  id: string;
  uuid: string;
  action: SagaOperatorAction;
  input: SagaActionInput;
  replyTo: string;
}
interface ReplyMessage {
  id: string;
  ok: boolean;
  execution?: RoutedActionResult['execution'];
  outcome?: RoutedActionResult['outcome'];
  error?: { code: string; message: string };
}

/** Options of {@link SagaCluster.start}. */
export interface SagaClusterOptions {
  /** The Redis (or Redis Cluster) the instances share: an ioredis client (not closed by `close()`) or a URL. */
  redis: Redis | Cluster | string;
  /** This instance's name, unique in the cluster and the same across its restarts (its inbox survives them). */
  instance: string;
  /** The WebSocket broker this instance's participants connect to. */
  broker: WebSocketBroker;
  /** Prefix of the cluster's keys. @defaultValue 'sagachart:' */
  keyPrefix?: string;
  /**
   * How long an instance's lease lasts: renewed every third of it; an instance that has not
   * renewed it for this long is gone, and the others take its executions over. @defaultValue 3000
   */
  leaseMs?: number;
  /** How long an operator action sent to another instance waits for its answer. @defaultValue 30000 */
  actionTimeoutMs?: number;
  /** Messages kept in each routing stream at most (approximately; the oldest are trimmed). @defaultValue 100000 */
  maxStreamLength?: number;
  logger?: SagaLogger;
}

/** What the cluster has routed, for tests and benchmarks. */
export interface SagaClusterStats {
  /** Requests sent through the local broker / through Redis to another instance. */
  sentLocally: number;
  forwardedRequests: number;
  /** Requests taken from Redis and given to this instance's participants. */
  deliveredRequests: number;
  /** Responses for executions another instance owns, sent to it / received here from others. */
  forwardedResponses: number;
  receivedResponses: number;
  /** Operator actions sent to owners / run here for other instances. */
  forwardedActions: number;
  servedActions: number;
  /** Executions picked up from instances that left. */
  takenOver: number;
  /** Requests sent through Redis and unanswered, sent again because an instance left (it may have taken them). */
  resentRequests: number;
}

const GROUP = 'sagachart';
/** How long a request sent through Redis is remembered without an answer (to be sent again if an instance leaves). */
const FORWARDED_KEPT_MS = 10 * 60_000;
const BLOCK_MS = 500;
const READ_COUNT = 200;

class ClusterActionError extends SagaError {}

/**
 * Several orchestrator instances on one Redis (or Redis Cluster), executions placed like virtual
 * actors: each execution is owned by one live instance at a time (rendezvous hashing of its uuid
 * over the instances whose lease in Redis is alive), a new execution is placed on the instance
 * that starts it, and when an instance's lease ends the others take its executions over from
 * their snapshots (`recover()` of those they now own). Between instances, messages go through
 * Redis Streams with consumer groups, so they survive an instance's restart: a request for a
 * service with no participant connected here goes to an instance that has one, a response goes
 * to the execution's owner, and an operator action too.
 *
 * @example
 * ```ts
 * const broker = await WebSocketBroker.listen({ port: 7400, auth });
 * const cluster = await SagaCluster.start({ redis: process.env.REDIS_URL!, instance: 'orchestrator-1', broker });
 * const manager = new SagaManager({ repository, sagas, ...cluster.managerOptions() });
 * cluster.attach(manager);
 * AdminApi.attach(broker.server, { manager, broker, router: cluster.actionRouter, token });
 * ```
 */
export class SagaCluster {
  readonly membership: ClusterMembership;
  readonly #redis: Client;
  readonly #ownsClient: boolean;
  readonly #reader: Client;
  readonly #local: WebSocketBroker;
  readonly #log: SagaLogger;
  readonly #prefix: string;
  readonly #o: Required<Pick<SagaClusterOptions, 'leaseMs' | 'actionTimeoutMs' | 'maxStreamLength'>>;
  readonly #groups = new Set<string>();
  readonly #replies = new Map<string, { resolve: (r: SagaActionResult | RoutedActionResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #stats: SagaClusterStats = { sentLocally: 0, forwardedRequests: 0, deliveredRequests: 0, forwardedResponses: 0, receivedResponses: 0, forwardedActions: 0, servedActions: 0, takenOver: 0, resentRequests: 0 };
  #listener: ResponseListener | undefined;
  #manager: SagaManager | undefined;
  #loop: Promise<void> | undefined;
  #closed = false;
  #lastClaim = 0;
  readonly #logged = new Map<string, { at: number; suppressed: number }>();
  /**
   * Requests sent through Redis and not answered yet, by request id: when an instance leaves, it
   * may have been the one that took them (its participant's answer lost with it), so they are sent
   * again (same ids: participants deduplicate). Forgotten once answered, or after ten minutes.
   */
  readonly #forwarded = new Map<string, { request: OutgoingRequest; at: number }>();
  /** Instances that left, until when their inboxes are read here: what others sent them on a stale view of the members. */
  readonly #departed = new Map<string, number>();

  private constructor(options: SagaClusterOptions, redis: Client, ownsClient: boolean) {
    if (!/^[\w.-]{1,100}$/.test(options.instance)) throw new TypeError(`SagaCluster: instance "${options.instance}" must be 1-100 letters, digits, ".", "-" or "_"`);
    this.#redis = redis;
    this.#ownsClient = ownsClient;
    this.#reader = redis.duplicate();
    this.#local = options.broker;
    this.#log = options.logger ?? defaultLogger;
    // One hash tag for every routing key: one blocking read covers the inbox and the services' streams, on a Cluster too.
    this.#prefix = `${options.keyPrefix ?? 'sagachart:'}{route}:`;
    this.#o = { leaseMs: options.leaseMs ?? 3000, actionTimeoutMs: options.actionTimeoutMs ?? 30_000, maxStreamLength: options.maxStreamLength ?? 100_000 };
    this.membership = new ClusterMembership({ redis, key: `${this.#prefix}instances`, instance: options.instance, leaseMs: this.#o.leaseMs, logger: this.#log });
  }

  /** Joins the cluster: takes this instance's lease and starts reading its inbox and its services' streams. */
  static async start(options: SagaClusterOptions): Promise<SagaCluster> {
    const own = typeof options.redis === 'string';
    const redis = typeof options.redis === 'string' ? new Redis(options.redis, { maxRetriesPerRequest: null }) : options.redis;
    const cluster = new SagaCluster(options, redis, own);
    cluster.#reader.on('error', () => undefined);
    await cluster.membership.start();
    cluster.#local.attach((response) => cluster.#fromParticipant(response));
    cluster.membership.onChange((previous, next) => cluster.#membersChanged(previous, next));
    cluster.#loop = cluster.#read();
    return cluster;
  }

  get instance(): string {
    return this.membership.instance;
  }

  get stats(): SagaClusterStats {
    return { ...this.#stats };
  }

  /** The broker the manager sends through: local participants first, else another instance's. */
  readonly broker: SagaBroker = {
    attach: (listener) => {
      this.#listener = listener;
    },
    send: (request) => this.#send(request),
    close: async () => undefined,
  };

  /** Whether this instance owns the execution now. */
  readonly owns = (uuid: string): boolean => this.membership.owns(uuid);

  /** Execution ids this instance owns: a new execution is placed where it is started. */
  readonly newId = (): string => {
    for (let i = 0; i < 64; i++) {
      const id = newUuidV7();
      if (this.membership.owns(id)) return id;
    }
    return newUuidV7();
  };

  /** What to give `new SagaManager()`: the broker, the ids and what it owns. */
  managerOptions(): { broker: SagaBroker; idGenerator: () => string; owns: (uuid: string) => boolean } {
    return { broker: this.broker, idGenerator: this.newId, owns: this.owns };
  }

  /** The manager of this instance: it runs the operator actions others send, and takes over executions. Picks up what it owns now. */
  attach(manager: SagaManager): Promise<void> {
    this.#manager = manager;
    return this.#recover((uuid) => this.membership.owns(uuid), 'start');
  }

  /** For the admin API: runs an action on the instance that owns the execution, and tells the overview who is in the cluster. */
  readonly actionRouter = {
    owns: (uuid: string): boolean => this.membership.owns(uuid),
    describe: (): { instance: string; members: readonly string[]; stats: SagaClusterStats } => ({ instance: this.instance, members: this.membership.members, stats: this.stats }),
    act: (uuid: string, action: SagaOperatorAction, input: SagaActionInput): Promise<SagaActionResult | RoutedActionResult> => this.#forwardAction(uuid, action, input),
  };

  /**
   * Leaves the cluster: gives up the lease (the others take over at once) and stops reading.
   * Executions stay stored. `{ release: false }` keeps the lease to run out, as a crash would.
   */
  async close(options: { release?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.membership.stop(options);
    for (const [, pending] of this.#replies) {
      clearTimeout(pending.timer);
      pending.reject(new ClusterActionError('SAGA_CLUSTER_CLOSED', 'this instance left the cluster before the action was answered'));
    }
    this.#replies.clear();
    this.#reader.disconnect();
    await this.#loop?.catch(() => undefined);
    if (this.#ownsClient) this.#redis.disconnect();
  }

  // ---------------------------------------------------------------------------------------------

  #key(kind: 'svc' | 'inbox', name: string): string {
    return `${this.#prefix}${kind}:${name}`;
  }

  #xadd(key: string, kind: string, body: object): void {
    this.#redis.xadd(key, 'MAXLEN', '~', String(this.#o.maxStreamLength), '*', 'k', kind, 'b', JSON.stringify(body)).catch((err: unknown) => {
      this.#rare('xadd', 'could not send a message to another instance; its step times out and is sent again', { key, error: err instanceof Error ? err.message : String(err) });
    });
  }

  #send(request: OutgoingRequest): void {
    if (this.#local.canDeliver(request)) {
      this.#stats.sentLocally++;
      this.#local.send(request);
      return;
    }
    this.#stats.forwardedRequests++;
    this.#forwarded.delete(request.requestId);
    this.#forwarded.set(request.requestId, { request, at: Date.now() });
    this.#xadd(this.#key('svc', serviceOf(request.target)), 'req', { request, from: this.instance });
  }

  /** After an instance left: sends again what went through Redis and has no answer yet. */
  #resendForwarded(): void {
    const now = Date.now();
    for (const [id, { request, at }] of this.#forwarded) {
      if (now - at > FORWARDED_KEPT_MS || (request.deadline !== null && request.deadline <= now) || !this.membership.owns(request.uuid)) {
        this.#forwarded.delete(id);
        continue;
      }
      this.#stats.resentRequests++;
      if (this.#local.canDeliver(request)) this.#local.send(request);
      else this.#xadd(this.#key('svc', serviceOf(request.target)), 'req', { request, from: this.instance });
    }
  }

  /** A participant connected here answered: the execution's owner gets it. */
  #fromParticipant(response: SagaResponseData): void {
    const uuid = parseRequestId(response.requestId)?.uuid;
    const owner = uuid ? this.membership.owner(uuid) : this.instance;
    if (owner === this.instance) {
      this.#forwarded.delete(response.requestId);
      this.#listener?.(response);
      return;
    }
    this.#stats.forwardedResponses++;
    this.#xadd(this.#key('inbox', owner), 'res', { response });
  }

  async #forwardAction(uuid: string, action: SagaOperatorAction, input: SagaActionInput): Promise<SagaActionResult | RoutedActionResult> {
    const owner = this.membership.owner(uuid);
    if (owner === this.instance) {
      if (!this.#manager) throw new ClusterActionError('SAGA_CLUSTER_NOT_ATTACHED', 'this instance has no manager attached (cluster.attach(manager))');
      return this.#manager.act(uuid, action, input);
    }
    const id = randomUUID();
    this.#stats.forwardedActions++;
    const answer = new Promise<SagaActionResult | RoutedActionResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(id);
        reject(new ClusterActionError('SAGA_CLUSTER_TIMEOUT', `instance "${owner}", which owns execution ${uuid}, did not answer the ${action} within ${this.#o.actionTimeoutMs} ms; if it is gone, the instance that takes its executions over runs the action when it is sent again`));
      }, this.#o.actionTimeoutMs);
      timer.unref();
      this.#replies.set(id, { resolve, reject, timer });
    });
    this.#xadd(this.#key('inbox', owner), 'act', { id, uuid, action, input, replyTo: this.instance });
    return answer;
  }

  async #serveAction(body: ActionMessage): Promise<void> {
    this.#stats.servedActions++;
    const reply = (payload: object) => this.#xadd(this.#key('inbox', body.replyTo), 'reply', { id: body.id, ...payload });
    try {
      if (!this.#manager) throw new ClusterActionError('SAGA_CLUSTER_NOT_ATTACHED', `instance "${this.instance}" has no manager attached`);
      // Owned here no more (it moved while the message travelled)? The action still runs here: the store's compare-and-set keeps it safe.
      const result = await this.#manager.act(body.uuid, body.action, body.input);
      reply({ ok: true, execution: result.execution.toJSON(), outcome: result.outcome });
    } catch (err) {
      const error = err instanceof SagaError ? { code: err.code, message: err.message } : { code: 'SAGA_CLUSTER_ACTION_FAILED', message: err instanceof Error ? err.message : String(err) };
      reply({ ok: false, error });
    }
  }

  #replied(body: ReplyMessage): void {
    const pending = this.#replies.get(body.id);
    if (!pending) return;
    this.#replies.delete(body.id);
    clearTimeout(pending.timer);
    if (body.ok && body.execution) pending.resolve({ execution: body.execution, outcome: body.outcome ?? null });
    else pending.reject(new ClusterActionError(body.error?.code ?? 'SAGA_CLUSTER_ACTION_FAILED', body.error?.message ?? 'the owner could not run the action'));
  }

  /** A request another instance sent for a service connected here. */
  #deliver(body: { request: OutgoingRequest }): void {
    const { request } = body;
    if (request.deadline !== null && request.deadline <= Date.now()) return; // its step has timed out already, and will send again
    this.#stats.deliveredRequests++;
    this.#local.send(request);
  }

  #membersChanged(previous: readonly string[], next: readonly string[]): void {
    const left = new Set(previous.filter((m) => !next.includes(m)));
    for (const m of next) this.#departed.delete(m);
    // Others may still send to an instance that left until they see it gone (up to a lease): read its inbox for a while.
    for (const m of left) this.#departed.set(m, Date.now() + 5 * this.#o.leaseMs);
    if (!left.size || !this.#manager) return;
    // Requests of this instance's executions that an instance which left may have taken.
    this.#resendForwarded();
    // The executions of the instances that left, that this instance owns now.
    void this.#recover((uuid) => this.membership.owns(uuid) && left.has(ownerOf(previous, uuid)), 'takeover');
  }

  async #recover(only: (uuid: string) => boolean, why: 'start' | 'takeover'): Promise<void> {
    const manager = this.#manager;
    if (!manager || this.#closed) return;
    try {
      const report = await manager.recover({ only });
      if (why === 'takeover') this.#stats.takenOver += report.recovered;
      if (report.recovered) this.#log.info?.(why === 'takeover' ? 'took over executions of instances that left' : 'picked up the executions this instance owns', { instance: this.instance, ...report, failed: report.failed.length });
    } catch (err) {
      this.#log.error?.('could not pick up executions', { instance: this.instance, why, error: err instanceof Error ? err.message : String(err) });
    }
  }

  async #ensureGroup(key: string): Promise<void> {
    if (this.#groups.has(key)) return;
    try {
      await this.#redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('BUSYGROUP')) throw err;
    }
    this.#groups.add(key);
  }

  /** Reads this instance's inbox and the streams of the services connected here, until closed. */
  async #read(): Promise<void> {
    const inbox = this.#key('inbox', this.instance);
    // What was delivered here and not acknowledged before a restart comes first.
    let pendingFirst = true;
    while (!this.#closed) {
      try {
        const now = Date.now();
        for (const [m, until] of this.#departed) if (until < now) this.#departed.delete(m);
        const inboxes = [inbox, ...[...this.#departed.keys()].map((m) => this.#key('inbox', m))];
        const services = this.#local.connectedServices().sort().map((s) => this.#key('svc', s));
        const keys = [...inboxes, ...services];
        for (const key of keys) await this.#ensureGroup(key);
        const reply = (await (this.#reader as Redis).xreadgroup(
          'GROUP',
          GROUP,
          this.instance,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          pendingFirst ? 1 : BLOCK_MS,
          'STREAMS',
          ...keys,
          ...keys.map(() => (pendingFirst ? '0' : '>')),
        )) as StreamReply;
        const gotPending: boolean = pendingFirst && (reply ?? []).some(([, entries]) => entries.length > 0);
        pendingFirst = gotPending;
        for (const [key, entries] of reply ?? []) {
          if (!entries.length) continue;
          for (const [, fields] of entries) this.#handle(fields);
          await this.#done(key, entries.map(([id]) => id));
        }
        await this.#claimAbandoned(services, inboxes.slice(1));
      } catch (err) {
        if (this.#closed) return;
        this.#rare('read', 'could not read the cluster streams; trying again', { instance: this.instance, error: err instanceof Error ? err.message : String(err) });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Messages an instance took and never acknowledged (it died while handling them): requests for
   * a service after two leases, and at once those in the inbox of an instance that left.
   */
  async #claimAbandoned(serviceKeys: readonly string[], departedInboxes: readonly string[]): Promise<void> {
    const now = Date.now();
    if (now - this.#lastClaim < this.#o.leaseMs / 2) return;
    this.#lastClaim = now;
    // Unanswered requests are remembered for a while only (oldest first: kept in the order sent).
    for (const [id, { at }] of this.#forwarded) {
      if (now - at <= FORWARDED_KEPT_MS) break;
      this.#forwarded.delete(id);
    }
    const todo: Array<[string, number]> = [...serviceKeys.map((k): [string, number] => [k, 2 * this.#o.leaseMs]), ...departedInboxes.map((k): [string, number] => [k, 0])];
    for (const [key, minIdle] of todo) {
      const claimed = (await this.#redis.xautoclaim(key, GROUP, this.instance, minIdle, '0', 'COUNT', READ_COUNT)) as [string, Array<[string, Fields] | null>, string[]?];
      const entries = (claimed[1] ?? []).filter((e): e is [string, Fields] => Array.isArray(e));
      if (!entries.length) continue;
      for (const [, fields] of entries) this.#handle(fields);
      await this.#done(key, entries.map(([id]) => id));
    }
  }

  /** Logs a warning at most once per kind every 5 s (Redis down would say it for every message), with how many were left out. */
  #rare(kind: string, message: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    const last = this.#logged.get(kind);
    if (last && now - last.at < 5_000) {
      last.suppressed++;
      return;
    }
    this.#log.warn?.(message, last?.suppressed ? { ...fields, suppressed: last.suppressed } : fields);
    this.#logged.set(kind, { at: now, suppressed: 0 });
  }

  /** Acknowledges handled messages and deletes them: each is for one reader, so the streams hold only what is on its way. */
  async #done(key: string, ids: string[]): Promise<void> {
    await this.#redis.pipeline().xack(key, GROUP, ...ids).xdel(key, ...ids).exec();
  }

  #handle(fields: Fields): void {
    let kind: string | undefined;
    let body: unknown;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'k') kind = fields[i + 1];
      else if (fields[i] === 'b') {
        try {
          body = JSON.parse(fields[i + 1]!);
        } catch {
          body = undefined;
        }
      }
    }
    if (typeof body !== 'object' || body === null) {
      this.#log.warn?.('ignored a malformed cluster message', { instance: this.instance, kind });
      return;
    }
    switch (kind) {
      case 'req':
        return this.#deliver(body as { request: OutgoingRequest });
      case 'res':
        this.#stats.receivedResponses++;
        this.#forwarded.delete((body as { response?: SagaResponseData }).response?.requestId ?? '');
        this.#listener?.((body as { response: SagaResponseData }).response);
        return;
      case 'act':
        void this.#serveAction(body as ActionMessage);
        return;
      case 'reply':
        return this.#replied(body as ReplyMessage);
      default:
        this.#log.warn?.('ignored a cluster message of an unknown kind', { instance: this.instance, kind });
    }
  }
}


const ownerOf = (members: readonly string[], uuid: string): string => ownerAmong(members, uuid) ?? '';
