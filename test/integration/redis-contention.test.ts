import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Saga, SagaManager, SagaRequest, SagaStatus, type OutgoingRequest, type SagaExecution, type SagaResponseData } from '../../src/index.js';
import { CountingRepository } from '../support/counting-repository.js';
import { collectingLogger, ManualBroker, until } from '../support/harness.js';
import { cleanupRedis, redisRepository } from '../support/redis.js';

afterEach(cleanupRedis);

const SAGA = new Saga('contended-order')
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('inventory.reserve', {}))
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('payment.charge', {}))
  .remoteStep('ship')
  .onExecute(() => new SagaRequest('shipping.ship', {}))
  .commit();

const EXECUTIONS = 50;
const STEPS = 3;
/**
 * One paused version per remote step (nothing is stored before the first wait), then one per
 * answer of the two-phase commit: each of the three services votes and acknowledges, the last
 * acknowledgement storing the finished execution.
 */
const VERSIONS = STEPS + 1 + 2 * STEPS;

describe('SagaManager contention on Redis', () => {
  it('two managers on one Redis resume the same executions concurrently; each transition is stored exactly once, no version gaps', async () => {
    const keyPrefix = `sagachart-test:${randomBytes(6).toString('hex')}:`;
    // Two repositories on one key prefix: each has its own ioredis connection.
    const repoA = new CountingRepository(redisRepository({ keyPrefix }));
    const repoB = new CountingRepository(redisRepository({ keyPrefix }));
    const brokerA = new ManualBroker();
    const brokerB = new ManualBroker();
    const logA = collectingLogger();
    const logB = collectingLogger();
    const a = new SagaManager({ repository: repoA, broker: brokerA, sagas: [SAGA], logger: logA, recoverIntervalMs: 0, pollIntervalMs: 20 });
    const b = new SagaManager({ repository: repoB, broker: brokerB, sagas: [SAGA], logger: logB, recoverIntervalMs: 0, pollIntervalMs: 20 });
    try {
      const started = await Promise.all(Array.from({ length: EXECUTIONS }, () => a.run(SAGA, { pauseOnDisk: true })));
      const uuids = started.map((e) => e.uuid);
      expect(new Set(uuids).size).toBe(EXECUTIONS);
      expect(a.liveCount).toBe(0);

      // Every request (whichever manager sent it) is answered once to each manager, at the same time.
      const answered = new Set<string>();
      const deliveries: Array<Promise<void>> = [];
      const results: Array<PromiseSettledResult<SagaExecution>> = [];
      const deliver = (request: OutgoingRequest) => {
        const response: SagaResponseData = { requestId: request.requestId, status: 200, content: {}, relatedServices: [] };
        // Alternate which manager is called first, so that neither is favoured by the call order.
        const [first, second] = answered.size % 2 ? [a, b] : [b, a];
        deliveries.push(Promise.allSettled([first.resume(response), second.resume(response)]).then((r) => void results.push(...r)));
      };
      await until(
        () => {
          for (const request of [...brokerA.requests, ...brokerB.requests]) {
            if (answered.has(request.requestId)) continue;
            answered.add(request.requestId);
            deliver(request);
          }
          return answered.size === EXECUTIONS * STEPS;
        },
        `all ${EXECUTIONS * STEPS} requests were sent`,
        20_000,
      );
      await Promise.all(deliveries);
      // resume() resolves once the response is applied; the store follows. A manager lets an
      // execution go once its final version is stored or it lost the race to store it.
      await until(() => a.liveCount === 0 && b.liveCount === 0, 'both managers let every execution go', 10_000);

      for (const uuid of uuids) {
        expect((await a.waitFor(uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Finished);
        expect((await b.waitFor(uuid, { timeoutMs: 5_000 })).status).toBe(SagaStatus.Finished);
      }
      // Each request went out once, from whichever manager stored the transition that made it.
      const sent = [...brokerA.requests, ...brokerB.requests].map((r) => r.requestId);
      expect(sent).toHaveLength(new Set(sent).size);
      expect(sent).toHaveLength(EXECUTIONS * STEPS);
      // A response applies whether or not the other manager got there first: resume never throws.
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(repoA.failures).toEqual([]);
      expect(repoB.failures).toEqual([]);

      const byUuid = new Map<string, number[]>(uuids.map((u) => [u, []]));
      for (const { uuid, version } of [...repoA.stored, ...repoB.stored]) byUuid.get(uuid)?.push(version);
      const expected = Array.from({ length: VERSIONS }, (_, i) => i + 1);
      for (const uuid of uuids) {
        // Exactly 1..N, each once: no duplicate, no gap, the same N for every execution.
        expect({ uuid, versions: byUuid.get(uuid)!.sort((x, y) => x - y) }).toEqual({ uuid, versions: expected });
        const record = await repoA.load(uuid);
        expect({ uuid, status: record?.status, version: record?.version }).toEqual({ uuid, status: SagaStatus.Finished, version: VERSIONS });
      }
      expect(repoA.stored.length + repoB.stored.length).toBe(EXECUTIONS * VERSIONS);

      // Contention really happened: both managers applied a response and raced to store it.
      const conflicts = repoA.conflicts.length + repoB.conflicts.length;
      expect(conflicts).toBeGreaterThan(0);
      // A lost race is logged as such, never as a storage failure.
      expect([...logA.lines, ...logB.lines].filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
      console.info(`[redis-contention] ${EXECUTIONS} executions, stores A=${repoA.stored.length} B=${repoB.stored.length}, version conflicts A=${repoA.conflicts.length} B=${repoB.conflicts.length}`);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
