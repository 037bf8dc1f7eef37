// What the floor and the XState floor share: the MiniBroker wire to a participant process, an
// optional Redis (variant other than "ws"), a key prefix of their own, and the clean-up after.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MiniBroker } from './mini-broker.js';
import { dropKeys, redisPid, startScript, stop } from './processes.js';
import { reportPids } from './workload.js';

export async function openFloorWire(variant: string, keyPrefix: string) {
  const broker = await MiniBroker.listen();
  const participant = await startScript('lib/participant.ts', [broker.url, 'floor-token']);
  await broker.ready();
  const redis = variant !== 'ws' ? new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined;
  const prefix = `${keyPrefix}:${randomBytes(4).toString('hex')}:`;
  const pids = { orchestrator: process.pid, participant: participant.pid, ...(redis ? { redis: await redisPid(redis) } : {}) };
  reportPids(pids);
  return {
    broker,
    redis,
    prefix,
    pids,
    /** Drops the keys, closes the wire and stops the participant. */
    async close(): Promise<void> {
      if (redis) await dropKeys(redis, prefix);
      broker.close();
      await stop(participant);
    },
  };
}
