import type { Clock } from '../clock.js';
import type { SagaLogger } from '../logger.js';

/** Something that emits ioredis' `error` events (a `Redis` or a `Cluster`). */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Reports a client's `error` events through `logger.warn`, at most one line per `intervalMs`
 * (the line counts those left out since the last one). Without a listener ioredis prints
 * "[ioredis] Unhandled error event" for every failed reconnect attempt. Returns the detach
 * function.
 *
 * @example
 * ```ts
 * const detach = reportConnectionErrors(redis, logger, systemClock, 5_000);
 * ```
 */
export function reportConnectionErrors(client: ErrorEmitter, logger: SagaLogger, clock: Clock, intervalMs: number): () => void {
  let last = -Infinity;
  let suppressed = 0;
  const listener = (err: Error): void => {
    const now = clock.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    logger.warn?.('Redis connection error', {
      error: err?.message ?? String(err),
      ...(suppressed ? { suppressed, intervalMs } : {}),
    });
    suppressed = 0;
  };
  client.on('error', listener);
  return () => client.off('error', listener);
}
