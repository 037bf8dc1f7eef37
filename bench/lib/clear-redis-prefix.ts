import { Cluster, type Redis } from 'ioredis';

/**
 * Deletes a benchmark's keys (all under `prefix`) on a single Redis or every master of a
 * Cluster, leaving the connection open (unlike `dropKeys`, which is for a client of its own).
 * The same as test/support/clear-redis-prefix.ts: bench and tests import nothing of each other.
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
