import type { Cluster, Redis } from 'ioredis';
import type { SagaLogger } from '../logger.js';

type Client = Redis | Cluster;

/**
 * Renews this instance's lease and reads the live ones in one call, on Redis's own clock (so the
 * instances' clocks do not matter): the sorted set holds each instance with the time its lease
 * ends; instances dead for ten leases are dropped.
 */
const LEASE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now + lease, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * lease)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
`;

type LeaseClient = Client & { sagachartLease(key: string, instance: string, leaseMs: number): Promise<string[]> };

/** FNV-1a, 32 bits: the weight of an instance for an execution. */
function weight(instance: string, uuid: string): number {
  let h = 0x811c9dc5;
  const s = `${instance}\u0000${uuid}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The instance that owns an execution among `members`: the one of highest weight for its uuid
 * (rendezvous hashing). When an instance leaves, only its executions change owner; when one joins,
 * only the executions it now wins move to it.
 */
export function ownerAmong(members: readonly string[], uuid: string): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const m of members) {
    const w = weight(m, uuid);
    if (w > bestWeight || (w === bestWeight && best !== undefined && m < best)) {
      best = m;
      bestWeight = w;
    }
  }
  return best;
}

/** Options of {@link ClusterMembership}. */
export interface ClusterMembershipOptions {
  redis: Client;
  /** The sorted set of instances and their leases. */
  key: string;
  instance: string;
  leaseMs: number;
  logger: SagaLogger;
}

/**
 * The live instances of a cluster, each with a lease in Redis it renews every third of the lease.
 * An instance whose lease ended is gone: its executions belong to the others.
 */
export class ClusterMembership {
  readonly #redis: LeaseClient;
  readonly #o: ClusterMembershipOptions;
  #members: readonly string[];
  #timer: NodeJS.Timeout | undefined;
  #listeners = new Set<(previous: readonly string[], next: readonly string[]) => void>();
  #renewing: Promise<void> | undefined;
  #stopped = false;
  #failures = 0;

  constructor(options: ClusterMembershipOptions) {
    this.#o = options;
    this.#members = [options.instance];
    const redis = options.redis as LeaseClient;
    if (typeof redis.sagachartLease !== 'function') redis.defineCommand('sagachartLease', { numberOfKeys: 1, lua: LEASE_LUA });
    this.#redis = redis;
  }

  get instance(): string {
    return this.#o.instance;
  }

  /** The live instances, this one included, sorted. */
  get members(): readonly string[] {
    return this.#members;
  }

  /** Takes the lease and reads the members; renews on an interval from then on. */
  async start(): Promise<void> {
    await this.renew();
    this.#timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.#o.leaseMs / 3)));
    this.#timer.unref();
  }

  /** Renews the lease now and reads who is live; tells the listeners when that changed. */
  renew(): Promise<void> {
    this.#renewing ??= this.#renew().finally(() => (this.#renewing = undefined));
    return this.#renewing;
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    let live: string[];
    try {
      live = await this.#redis.sagachartLease(this.#o.key, this.#o.instance, this.#o.leaseMs);
      this.#failures = 0;
    } catch (err) {
      if (this.#failures++ % 10 === 0) this.#o.logger.warn?.('could not renew the cluster lease; executions stay where they are until Redis answers', { instance: this.#o.instance, error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.#stopped) return;
    const next = [...new Set([...live, this.#o.instance])].sort();
    const previous = this.#members;
    if (next.length === previous.length && next.every((m, i) => m === previous[i])) return;
    this.#members = next;
    this.#o.logger.info?.('cluster members changed', { instance: this.#o.instance, members: next, left: previous.filter((m) => !next.includes(m)), joined: next.filter((m) => !previous.includes(m)) });
    for (const listener of this.#listeners) listener(previous, next);
  }

  /** The owner of an execution among the live instances. */
  owner(uuid: string): string {
    return ownerAmong(this.#members, uuid) ?? this.#o.instance;
  }

  owns(uuid: string): boolean {
    return this.owner(uuid) === this.#o.instance;
  }

  /** Told when instances join or leave, with the members before and after. */
  onChange(listener: (previous: readonly string[], next: readonly string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops renewing and gives the lease up, so that the others take over at once. */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#renewing?.catch(() => undefined);
    if (options.release !== false) await this.#o.redis.zrem(this.#o.key, this.#o.instance).catch(() => undefined);
  }
}
