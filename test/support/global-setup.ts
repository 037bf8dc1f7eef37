import { Redis } from 'ioredis';

/**
 * Integration tests need a Redis at REDIS_URL (default redis://127.0.0.1:6379). Without one the
 * run stops here and says so: those tests fail rather than skip.
 */
export default async function setup(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `No Redis answers at REDIS_URL=${url} (${(err as Error).message}). The integration tests need one: ` +
        `start it with \`redis-server --daemonize yes --port 6379 --save "" --appendonly no\` or set REDIS_URL.`,
    );
  } finally {
    redis.disconnect();
  }
}
