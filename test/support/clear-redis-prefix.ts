import { Cluster, type Redis } from 'ioredis';

/**
 * Deletes every key under `prefix` (what a test's repository wrote under its key prefix), on a
 * single Redis or on every master of a Cluster. SCAN rather than KEYS, so that a shared Redis
 * is not blocked, and one UNLINK per key, since keys of different shards live in different slots.
 *
 * @example
 * ```ts
 * await clearRedisPrefix(repository.redis, repository.keyPrefix);
 * ```
 */
export async function clearRedisPrefix(redis: Redis | Cluster, prefix: string): Promise<void> {
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      await Promise.all(keys.map((key) => node.unlink(key)));
    } while (cursor !== '0');
  }
}
