import { SagaStatus } from '../status.js';

const STATUSES: readonly SagaStatus[] = Object.values(SagaStatus);

/**
 * Where {@link RedisSagaRepository} keeps things. Executions are spread over shards by uuid; every
 * key of a shard carries the shard's hash tag (`<keyPrefix>{7}:…`), so that one Lua call can update
 * an execution and its indexes together on a single Redis or a Cluster:
 *
 * - `x:<uuid>`: hash of the record (`v`, `status`, `saga`, `hash`, `created`, `updated`, `deadline`, `body`, `w`)
 * - `all`, `st:<status>`, `saga:<name>`: sorted sets of `<createdAt, 15 digits>:<uuid>` (score 0, paged BYLEX)
 * - `exp`: sorted set of uuids by the time their retention runs out
 *
 * @example
 * ```ts
 * const layout = new RedisKeyLayout('sagachart:', 16);
 * layout.recordKey('0190a5c2-…'); // 'sagachart:{11}:x:0190a5c2-…'
 * ```
 */
export class RedisKeyLayout {
  constructor(
    /** Prefix of every key. */
    readonly keyPrefix: string,
    /** Number of shards, fixed for the life of the data. */
    readonly shards: number,
  ) {}

  /** The shard of an execution: FNV-1a of the uuid, a stable and fast spread. */
  shardOf(uuid: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < uuid.length; i++) h = Math.imul(h ^ uuid.charCodeAt(i), 0x01000193);
    return (h >>> 0) % this.shards;
  }

  /** The prefix of every key of a shard, hash tag included: `<keyPrefix>{<shard>}:`. */
  prefixOf(shard: number): string {
    return `${this.keyPrefix}{${shard}}:`;
  }

  /** The record hash of an execution. */
  recordKey(uuid: string): string {
    return `${this.prefixOf(this.shardOf(uuid))}x:${uuid}`;
  }

  /** Every index key a store may touch in `shard` for records of these saga names (declared to Redis). */
  indexKeys(shard: number, sagaNames: Iterable<string>): string[] {
    const prefix = this.prefixOf(shard);
    const keys = [`${prefix}all`, `${prefix}exp`];
    for (const status of STATUSES) keys.push(`${prefix}st:${status}`);
    for (const name of sagaNames) keys.push(`${prefix}saga:${name}`);
    return keys;
  }
}

/**
 * The time part of an index member (`<createdAt, 15 digits>:<uuid>`), so that lexical order is
 * (createdAt, uuid) order; also the bound of a BYLEX range.
 *
 * @example
 * ```ts
 * `${padTime(record.createdAt)}:${record.uuid}`; // '001767225600000:0190a5c2-…'
 * ```
 */
export function padTime(ms: number): string {
  return String(Math.max(0, Math.trunc(ms))).padStart(15, '0');
}

/** Length of the `<createdAt>:` part of an index member: `member.slice(MEMBER_TIME_LENGTH)` is the uuid. */
export const MEMBER_TIME_LENGTH = 16;
