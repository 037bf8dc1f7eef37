import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { defaultLogger, type SagaLogger } from '../logger.js';
import { isFinalStatus, SagaStatus } from '../status.js';
import { pageLimit } from './list-summaries.js';
import { parseRecord } from './parse-record.js';
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
  sagaStore: { numberOfKeys: 1, lua: lua('store-1.lua') },
  sagaDelete: { numberOfKeys: 1, lua: lua('delete-1.lua') },
  sagaSweep: { numberOfKeys: 1, lua: lua('sweep-1.lua') },
} as const;

type Client = Redis | Cluster;
type ScriptedRedis = Client & {
  sagaStore(key: string, ...args: Array<string | number>): Promise<number | [number, string]>;
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
  /** @defaultValue the system clock */
  clock?: Clock;
  /** @defaultValue warnings and errors to stderr */
  logger?: SagaLogger;
}

/** Executions read by one `loadMany()` round trip. */
const LOAD_BATCH = 256;
const CURSOR = /^\d{15}:./;

const pad = (ms: number) => String(Math.max(0, Math.trunc(ms))).padStart(15, '0');

/** FNV-1a: a stable, fast spread of uuids over shards. */
function shardOf(uuid: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uuid.length; i++) h = Math.imul(h ^ uuid.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}

/**
 * Stores executions in Redis (ioredis). One Lua script per operation (`src/repositories/redis/`):
 * a store is one `EVALSHA` doing compare-and-set on the version, the snapshot with its outbox,
 * and the status, saga and expiry indexes together. Executions are spread over shards; all keys
 * of a shard share a hash tag (`sagachart:{7}:…`), so the same code runs on Redis Cluster.
 * Finished executions are kept for `retentionMs`, then swept.
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
  readonly #prefix: string;
  readonly #shards: number;
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
    this.#prefix = options.keyPrefix ?? 'sagachart:';
    this.keyPrefix = this.#prefix;
    this.#shards = shards;
    this.#retentionMs = options.retentionMs;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? defaultLogger;
    if (this.#retentionMs !== undefined) {
      this.#sweeper = setInterval(() => {
        this.sweep().catch((err: unknown) => this.#log.warn?.('sweeping expired executions failed', { error: String(err) }));
      }, options.sweepIntervalMs ?? 60_000);
      this.#sweeper.unref();
    }
  }

  async store(record: SagaRecord, expectedVersion: number | null): Promise<void> {
    checkNextVersion(record, expectedVersion);
    const prefix = this.#shardPrefix(record.uuid);
    const expireAt = this.#retentionMs !== undefined && isFinalStatus(record.status) ? record.updatedAt + this.#retentionMs : '';
    const result = await this.#scripted.sagaStore(
      `${prefix}x:${record.uuid}`,
      prefix,
      record.uuid,
      expectedVersion ?? '',
      record.version,
      record.status,
      record.sagaName,
      record.definitionHash,
      record.createdAt,
      record.updatedAt,
      record.timer?.at ?? '',
      JSON.stringify(record),
      expireAt,
      // Identifies this call: if ioredis re-sends it after a reconnect, it finds its own write.
      randomUUID(),
    );
    storeResult(record.uuid, expectedVersion, result);
  }

  async load(uuid: string): Promise<SagaRecord | null> {
    const body = await this.redis.hget(`${this.#shardPrefix(uuid)}x:${uuid}`, 'body');
    return body === null ? null : parseRecord(uuid, body, 'its stored record');
  }

  /**
   * Sends the reads back to back without waiting on each other (ioredis writes them in one go;
   * on a Cluster each goes to its shard's master), a bounded number at a time.
   */
  async loadMany(uuids: readonly string[]): Promise<Array<SagaRecord | null>> {
    const out: Array<SagaRecord | null> = [];
    for (let start = 0; start < uuids.length; start += LOAD_BATCH) {
      const chunk = uuids.slice(start, start + LOAD_BATCH);
      const bodies = await Promise.all(chunk.map((uuid) => this.redis.hget(`${this.#shardPrefix(uuid)}x:${uuid}`, 'body')));
      bodies.forEach((body, i) => out.push(body === null ? null : parseRecord(chunk[i]!, body, 'its stored record')));
    }
    return out;
  }

  async delete(uuid: string): Promise<boolean> {
    const prefix = this.#shardPrefix(uuid);
    return (await this.#scripted.sagaDelete(`${prefix}x:${uuid}`, prefix, uuid)) === 1;
  }

  /**
   * Newest first. Each page reads the chosen index of every shard in one pipelined round trip
   * and merges; the cursor is the last `(createdAt, uuid)` returned, so paging is exact.
   */
  async list(filter: SagaListFilter = {}): Promise<SagaListPage> {
    const limit = pageLimit(filter, 'RedisSagaRepository');
    if (filter.cursor && !CURSOR.test(filter.cursor)) {
      throw new RangeError(`RedisSagaRepository: cursor ${JSON.stringify(filter.cursor)} is not one list() returned; pass the cursor of the previous page, or null for the first.`);
    }
    const statuses = filter.status === undefined ? null : typeof filter.status === 'string' ? [filter.status] : [...filter.status];
    if (statuses?.length === 0) return { items: [], cursor: null };
    const indexes = statuses ? statuses.map((s) => `st:${s}`) : filter.sagaName !== undefined ? [`saga:${filter.sagaName}`] : ['all'];
    const min = filter.createdAfter !== undefined ? `[${pad(filter.createdAfter)}` : '-';
    let max = filter.cursor ? `(${filter.cursor}` : filter.createdBefore !== undefined ? `(${pad(filter.createdBefore)}` : '+';
    const items: SagaRecordSummary[] = [];
    for (;;) {
      const batch = Math.max(limit - items.length, 10);
      // Sent together without waiting on each other (ioredis writes them back to back), one per
      // shard and index: a pipeline could not span the slots of a Cluster.
      const queries: Array<Promise<string[]>> = [];
      for (let shard = 0; shard < this.#shards; shard++) {
        for (const index of indexes) queries.push(this.redis.zrange(`${this.#prefixOf(shard)}${index}`, max, min, 'BYLEX', 'REV', 'LIMIT', 0, batch));
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
      const summaries = await this.#summaries(safe);
      let consumed = 0;
      for (; consumed < safe.length && items.length < limit; consumed++) {
        const s = summaries[consumed];
        max = `(${safe[consumed]}`;
        if (s && matchesFilter(s, { ...filter, status: statuses ?? undefined })) items.push(s);
      }
      const done = exhausted && consumed === safe.length;
      if (done) return { items, cursor: null };
      if (items.length >= limit) return { items, cursor: max.slice(1) };
    }
  }

  /** Deletes finished executions whose retention has run out; returns how many. */
  async sweep(): Promise<number> {
    let total = 0;
    for (let shard = 0; shard < this.#shards; shard++) {
      const prefix = this.#prefixOf(shard);
      for (;;) {
        const n = await this.#scripted.sagaSweep(`${prefix}exp`, prefix, this.#clock.now(), 500);
        total += n;
        if (n < 500) break;
      }
    }
    return total;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    if (this.#owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** Deletes every key under this repository's prefix (for tests). */
  async clear(): Promise<void> {
    const nodes: Redis[] = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${this.#prefix}*`, 'COUNT', 1000);
        cursor = next;
        // One key per call: on a Cluster, keys of different shards live in different slots.
        await Promise.all(keys.map((key) => node.unlink(key)));
      } while (cursor !== '0');
    }
  }

  #prefixOf(shard: number): string {
    return `${this.#prefix}{${shard}}:`;
  }

  #shardPrefix(uuid: string): string {
    return this.#prefixOf(shardOf(uuid, this.#shards));
  }

  async #summaries(members: readonly string[]): Promise<Array<SagaRecordSummary | null>> {
    if (!members.length) return [];
    const replies = await Promise.all(
      members.map((member) => {
        const uuid = member.slice(16);
        return this.redis.hmget(`${this.#shardPrefix(uuid)}x:${uuid}`, 'v', 'status', 'saga', 'hash', 'created', 'updated', 'deadline');
      }),
    );
    return replies.map((reply, i) => {
      const [v, status, saga, hash, created, updated, deadline] = reply;
      if (v === null || v === undefined) return null; // deleted between the index read and now
      return {
        uuid: members[i]!.slice(16),
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

/** Maps the return codes of store-1.lua to errors. */
function storeResult(uuid: string, expected: number | null, result: number | [number, string]): void {
  if (result === 1) return;
  if (Array.isArray(result) && result[0] === -1) {
    throw new SagaVersionConflictError(uuid, expected ?? 0, result[1] === '' ? null : Number(result[1]));
  }
  throw new Error(`store-1.lua returned an unknown code: ${JSON.stringify(result)}`);
}
