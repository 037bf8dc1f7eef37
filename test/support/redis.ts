import { randomBytes } from 'node:crypto';
import { RedisSagaRepository, type RedisSagaRepositoryOptions } from '../../src/index.js';
import { clearRedisPrefix } from './clear-redis-prefix.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const opened: RedisSagaRepository[] = [];

/** A repository on the test Redis under a random key prefix of its own. */
export function redisRepository(options: RedisSagaRepositoryOptions = {}): RedisSagaRepository {
  const repository = new RedisSagaRepository({ redis: REDIS_URL, keyPrefix: `sagachart-test:${randomBytes(6).toString('hex')}:`, ...options });
  opened.push(repository);
  return repository;
}

/** Deletes the keys of every repository opened by `redisRepository()` and closes it. */
export async function cleanupRedis(): Promise<void> {
  for (const repository of opened.splice(0)) {
    await clearRedisPrefix(repository.redis, repository.keyPrefix).catch(() => undefined);
    await repository.close();
  }
}
