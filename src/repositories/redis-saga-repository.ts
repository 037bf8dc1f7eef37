import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { isFinalStatus, SagaStatus } from '../status.js';
import { pageLimit } from './list-summaries.js';
import { parseRecord } from './parse-record.js';
import { reportConnectionErrors } from './redis-connection-errors.js';
import { RedisGroupCommit } from './redis-group-commit.js';
import { MEMBER_TIME_LENGTH, padTime, RedisKeyLayout } from './redis-key-layout.js';
import {
  checkNextVersion,
  matchesFilter,
  type SagaListFilter,
  type SagaListPage,
  type SagaRecord,
  type SagaRecordSummary,
  type SagaRepository,
} from './saga-repository.js';

const lua = (name: string) => readFileSync(new URL(`./redis/${name}`, import.meta.url), 'utf8');
const SCRIPTS = {
  // No fixed number of keys: the first argument of a call is its number of keys.
  sagaStoreMany: { lua: lua('store-n.lua') },
  sagaDelete: { numberOfKeys: 1, lua: lua('delete-1.lua') },
  sagaSweep: { numberOfKeys: 1, lua: lua('sweep-1.lua') },
} as const;

type Client = Redis | Cluster;
type ScriptedRedis = Client & {
  sagaStoreMany(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<unknown>;
  sagaDelete(key: string, prefix: string, uuid: string): Promise<number>;
  sagaSweep(key: string, prefix: string, now: number, batch: number): Promise<number>;
};

/** Options of {@link RedisSagaRepository}. */
export interface RedisSagaRepositoryOptions {
  /**
   * An ioredis client (`Redis`, or `Cluster` for Redis Cluster) to share (not closed by
   * `close()`), or a URL.
   * @defaultValue process.env.REDIS_URL, else redis://127.0.0.1:6379
   */
  redis?: Redis | Cluster | string;
  /** Options for the client made from a URL. By default commands wait through reconnects. */
  redisOptions?: RedisOptions;
  /** Prefix of every key. @defaultValue 'sagachart:' */
  keyPrefix?: string;
  /**
   * Number of shards. Every key of an execution, and the indexes that list it, carry the hash tag
   * of its shard, so one Lua call updates them atomically, on a single Redis or a Cluster. Fixed
   * for the life of the data. @defaultValue 16
   */
  shards?: number;
  /** Keep `finished` and `errored` executions this long, then delete them. @defaultValue kept for ever */
  retentionMs?: number;
  /** How often expired executions are swept. @defaultValue 60000 */
  sweepIntervalMs?: number;
  /**
   * Most records one script call stores: the `store()` calls of one tick go out together, in
   * calls of at most this many records (and about 1 MiB of records), one shard per call on a
   * Cluster. 1 turns group commit off. @defaultValue 32
   */
  maxStoreBatch?: number;
  /** @defaultValue the system clock */
  clock?: Clock;
  /**
   * Told about failed sweeps and, for a client made from a URL, its connection errors (one line
   * per 5 s at most). @defaultValue warnings and errors to stderr
   */
  logger?: SagaLogger;
}

/** Bytes of records per store call at most (beyond it the batch is cut; one larger record goes alone). */
const MAX_BATCH_BYTES = 1 << 20;
/** At most one line per this many ms about the owned client's connection errors. */
const ERROR_LOG_INTERVAL_MS = 5_000;
/** Executions read by one `loadMany()` round trip. */
const LOAD_BATCH = 256;
const CURSOR = /^\d{15}:./;

/**
 * Stores executions in Redis (ioredis). One Lua script per operation (`src/repositories/redis/`).
 * Stores are group-committed: the `store()` calls of one tick go out as one `EVALSHA` of
 * store-n.lua (a few on a Cluster: one per shard), which does each record's compare-and-set and
 * keeps the status, saga and expiry indexes in step, touching only what changed. Executions are
 * spread over shards; all keys of a shard share a hash tag (`sagachart:{7}:…`, see
 * {@link RedisKeyLayout}), so the same code runs on Redis Cluster. Finished executions are kept
 * for `retentionMs`, then swept.
 *
 * @example
 * ```ts
 * const repository = new RedisSagaRepository({ redis: process.env.REDIS_URL, retentionMs: 7 * 86_400_000 });
 * const manager = new SagaManager({ repository, broker, sagas: [CREATE_ORDER] });
 * ```
 */
export class RedisSagaRepository implements SagaRepository {
  readonly redis: Client;
  /** Prefix of every key of this repository. */
  readonly keyPrefix: string;
  readonly #scripted: ScriptedRedis;
  readonly #owned: boolean;
  readonly #layout: RedisKeyLayout;
  readonly #commit: RedisGroupCommit;
  readonly #retentionMs: number | undefined;
  readonly #clock: Clock;
  readonly #log: SagaLogger;
  readonly #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(options: RedisSagaRepositoryOptions = {}) {
    const shards = options.shards ?? 16;
    if (!Number.isInteger(shards) || shards < 1 || shards > 16384) {
      throw new RangeError(`RedisSagaRepository: shards must be a whole number from 1 to 16384, got ${shards}.`);
    }
    if (options.retentionMs !== undefined && !(options.retentionMs >= 0)) {
      throw new RangeError(`RedisSagaRepository: retentionMs must be >= 0, got ${options.retentionMs}.`);
    }
    const maxStoreBatch = options.maxStoreBatch ?? 32;
    if (!Number.isInteger(maxStoreBatch) || maxStoreBatch < 1 || maxStoreBatch > 1024) {
      throw new RangeError(`RedisSagaRepository: maxStoreBatch must be a whole number from 1 to 1024, got ${maxStoreBatch}.`);
    }
    const given = options.redis;
    const shared = given instanceof Redis || given instanceof Cluster ? given : undefined;
    this.#owned = shared === undefined;
    this.redis =
      shared ??
      new Redis(typeof given === 'string' ? given : (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), {
        maxRetriesPerRequest: null,
        ...options.redisOptions,
      });
    for (const [name, script] of Object.entries(SCRIPTS)) {
      if (!(name in this.redis)) this.redis.defineCommand(name, script);
    }
    this.#scripted = this.redis as ScriptedRedis;
    this.keyPrefix = options.keyPrefix ?? 'sagachart:';
    this.#layout = new RedisKeyLayout(this.keyPrefix, shards);
    this.#commit = new RedisGroupCommit(this.#layout, (keys, argv) => this.#scripted.sagaStoreMany(keys.length, ...keys, ...argv), {
      maxRecords: maxStoreBatch,
      maxBytes: MAX_BATCH_BYTES,
      perShard: this.redis instanceof Cluster,
    });
    this.#retentionMs = options.retentionMs;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? defaultLogger;
    // A shared client is its owner's to watch; ours would otherwise print every failed reconnect.
    // (Never detached: a closed client may still report the end of its connection.)
    if (this.#owned) reportConnectionErrors(this.redis, this.#log, this.#clock, ERROR_LOG_INTERVAL_MS);
    if (this.#retentionMs !== undefined) {
      this.#sweeper = setInterval(() => {
        this.sweep().catch((err: unknown) => this.#log.warn?.('sweeping expired executions failed', { error: String(err) }));
      }, options.sweepIntervalMs ?? 60_000);
      this.#sweeper.unref();
    }
  }

  /** Number of store script calls sent so far: fewer than stores when group commit batched them. */
  get storeCalls(): number {
    return this.#commit.calls;
  }

  /**
   * Queued for the group commit of this tick. Any other operation sends the queue first, so that
   * commands still reach Redis in the order they were called (a delete is never overtaken by a
   * store made before it).
   */
  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    checkNextVersion(record, expectedVersion);
    const expireAt = this.#retentionMs !== undefined && isFinalStatus(record.status) ? record.updatedAt + this.#retentionMs : '';
    return this.#commit.store(record, expectedVersion, expireAt);
  }

  async load(uuid: string): Promise<SagaRecord | null> {
    this.#commit.flush();
    const body = await this.redis.hget(this.#layout.recordKey(uuid), 'body');
    return body === null ? null : parseRecord(uuid, body, 'its stored record');
  }

  /**
   * Sends the reads back to back without waiting on each other (ioredis writes them in one go;
   * on a Cluster each goes to its shard's master), a bounded number at a time.
   */
  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    this.#commit.flush();
    const out: Array<SagaRecord | null> = [];
    for (let start = 0; start < uuids.length; start += LOAD_BATCH) {
      const chunk = uuids.slice(start, start + LOAD_BATCH);
      const bodies = await Promise.all(chunk.map((uuid) => this.redis.hget(this.#layout.recordKey(uuid), 'body')));
      bodies.forEach((body, i) => out.push(body === null ? null : parseRecord(chunk[i]!, body, 'its stored record')));
    }
    return out;
  }

  async delete(uuid: string): Promise<boolean> {
    this.#commit.flush();
    const prefix = this.#layout.prefixOf(this.#layout.shardOf(uuid));
    return (await this.#scripted.sagaDelete(`${prefix}x:${uuid}`, prefix, uuid)) === 1;
  }

  /** Counts by status: the size of each status index of every shard, in one round trip. */
  async count(): Promise<Record<SagaStatus, number>> {
    this.#commit.flush();
    const statuses = Object.values(SagaStatus);
    const queries: Array<Promise<number>> = [];
    for (let shard = 0; shard < this.#layout.shards; shard++) for (const s of statuses) queries.push(this.redis.zcard(`${this.#layout.prefixOf(shard)}st:${s}`));
    const sizes = await Promise.all(queries);
    const counts = Object.fromEntries(statuses.map((s) => [s, 0])) as Record<SagaStatus, number>;
    sizes.forEach((n, i) => (counts[statuses[i % statuses.length]!] += n));
    return counts;
  }

  /**
   * Newest first. Each page reads the chosen index of every shard in one pipelined round trip
   * and merges; the cursor is the last `(createdAt, uuid)` returned, so paging is exact.
   */
  async list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    this.#commit.flush();
    const limit = pageLimit(filter, 'RedisSagaRepository');
    if (filter.cursor && !CURSOR.test(filter.cursor)) {
      throw new RangeError(`RedisSagaRepository: cursor ${JSON.stringify(filter.cursor)} is not one list() returned; pass the cursor of the previous page, or null for the first.`);
    }
    const statuses = filter.status === undefined ? null : typeof filter.status === 'string' ? [filter.status] : [...filter.status];
    if (statuses?.length === 0) return { items: [], cursor: null };
    const indexes = statuses ? statuses.map((s) => `st:${s}`) : filter.sagaName !== undefined ? [`saga:${filter.sagaName}`] : ['all'];
    const min = filter.createdAfter !== undefined ? `[${padTime(filter.createdAfter)}` : '-';
    let max = filter.cursor ? `(${filter.cursor}` : filter.createdBefore !== undefined ? `(${padTime(filter.createdBefore)}` : '+';
    const items: SagaRecordSummary[] = [];
    for (;;) {
      const batch = Math.max(limit - items.length, 10);
      // Sent together without waiting on each other (ioredis writes them back to back), one per
      // shard and index: a pipeline could not span the slots of a Cluster.
      const queries: Array<Promise<string[]>> = [];
      for (let shard = 0; shard < this.#layout.shards; shard++) {
        for (const index of indexes) queries.push(this.redis.zrange(`${this.#layout.prefixOf(shard)}${index}`, max, min, 'BYLEX', 'REV', 'LIMIT', 0, batch));
      }
      const replies = await Promise.all(queries);
      // A full reply may have more below its last member: only members at or above the highest
      // such "frontier" are known to be complete in this round.
      let frontier = '';
      let exhausted = true;
      const members: string[] = [];
      for (const list of replies) {
        if (list.length === batch) {
          exhausted = false;
          if (list[list.length - 1]! > frontier) frontier = list[list.length - 1]!;
        }
        members.push(...list);
      }
      const safe = members.filter((m) => m >= frontier).sort().reverse();
      // Summaries are read only for the members this page can still take (the shards together
      // return up to `shards` times more); a member whose record no longer matches takes one more.
      let consumed = 0;
      const matching = { ...filter, status: statuses ?? undefined };
      while (consumed < safe.length && items.length < limit) {
        const wanted = safe.slice(consumed, consumed + (limit - items.length));
        const summaries = await this.#summaries(wanted);
        for (let i = 0; i < wanted.length; i++, consumed++) {
          const s = summaries[i];
          max = `(${wanted[i]}`;
          if (s && matchesFilter(s, matching)) items.push(s);
        }
      }
      const done = exhausted && consumed === safe.length;
      if (done) return { items, cursor: null };
      if (items.length >= limit) return { items, cursor: max.slice(1) };
    }
  }

  /** Deletes finished executions whose retention has run out; returns how many. */
  async sweep(): Promise<number> {
    this.#commit.flush();
    let total = 0;
    for (let shard = 0; shard < this.#layout.shards; shard++) {
      const prefix = this.#layout.prefixOf(shard);
      for (;;) {
        const n = await this.#scripted.sagaSweep(`${prefix}exp`, prefix, this.#clock.now(), 500);
        total += n;
        if (n < 500) break;
      }
    }
    return total;
  }

  /**
   * Stops the sweep and sends the stores queued in this tick; a client made from a URL is then
   * closed with QUIT, which Redis answers after those stores (a shared client is left open).
   */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#commit.flush();
    if (!this.#owned) return;
    await this.redis.quit().catch(() => undefined);
    // QUIT while reconnecting resolves at once but leaves the reconnect loop running.
    if (this.redis.status !== 'end') this.redis.disconnect();
  }

  async #summaries(members: readonly string[]): Promise<Array<SagaRecordSummary | null>> {
    if (!members.length) return [];
    const replies = await Promise.all(
      members.map((member) => this.redis.hmget(this.#layout.recordKey(member.slice(MEMBER_TIME_LENGTH)), 'v', 'status', 'saga', 'hash', 'created', 'updated', 'deadline')),
    );
    return replies.map((reply, i) => {
      const [v, status, saga, hash, created, updated, deadline] = reply;
      if (v === null || v === undefined) return null; // deleted between the index read and now
      return {
        uuid: members[i]!.slice(MEMBER_TIME_LENGTH),
        sagaName: saga ?? '',
        definitionHash: hash ?? '',
        version: Number(v),
        status: status as SagaStatus,
        createdAt: Number(created),
        updatedAt: Number(updated),
        deadline: deadline ? Number(deadline) : null,
      };
    });
  }
}
