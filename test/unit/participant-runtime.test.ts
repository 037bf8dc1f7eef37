import { afterEach, describe, expect, it } from 'vitest';
import {
  InProcessBroker,
  ParticipantRuntime,
  Saga,
  SagaBusinessError,
  SagaRequest,
  SagaResponse,
  SagaStatus,
  type JsonValue,
  type ParticipantHandler,
  type ParticipantRequestInfo,
  type SagaResponseData,
} from '../../src/index.js';
import { MAX_RESPONSE_DEPTH, responseProblem } from '../../src/messages/saga-response.js';
import { closeManagers, collectingLogger, managerWith } from '../support/harness.js';

afterEach(closeManagers);

let nextId = 0;
function request(requestId = `order-${++nextId}/execute/1/reserve`): ParticipantRequestInfo {
  return { requestId, uuid: 'order', sagaName: 'order', target: 'inventory.reserve', step: 'reserve', phase: 'execute', attempt: 1 };
}

function runtimeWith(handler: ParticipantHandler, options: { dedupCapacity?: number } = {}) {
  const logger = collectingLogger();
  let calls = 0;
  const runtime = new ParticipantRuntime({
    service: 'inventory',
    handlers: {
      'inventory.reserve': (content, info) => {
        calls++;
        return handler(content, info);
      },
    },
    logger,
    ...options,
  });
  return { runtime, logger, calls: () => calls };
}

/** Nested `depth` levels deep: `{ a: { a: … } }`. */
function nested(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let at = root;
  for (let i = 1; i < depth; i++) {
    const next: Record<string, unknown> = {};
    at.a = next;
    at = next;
  }
  return root;
}

function cycle(): Record<string, unknown> {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = { back: a };
  return a;
}

/** What a transport does with an answer: it must not throw, and the orchestrator must take it. */
function expectSendable(response: SagaResponseData): void {
  const text = JSON.stringify(response);
  expect(JSON.parse(text)).toEqual(response);
  expect(responseProblem(response)).toBeNull();
}

/** Content that JSON or the orchestrator cannot take, and a word of the reason given for each. */
const UNSENDABLE: Array<[string, () => unknown, RegExp]> = [
  ['a BigInt', () => ({ total: 10n }), /BigInt/],
  ['a cycle', cycle, /circular/i],
  ['5,000 levels of nesting', () => nested(5_000), /deeper than/],
  ['100 levels of nesting (JSON, but deeper than the orchestrator takes)', () => nested(100), new RegExp(`deeper than ${MAX_RESPONSE_DEPTH} levels`)],
  ['a toJSON that throws', () => ({ when: { toJSON: () => { throw new Error('toJSON broke'); } } }), /toJSON broke/],
  ['a getter that throws', () => ({ get price(): number { throw new Error('getter broke'); } }), /getter broke/],
  ['a Map', () => ({ stock: new Map([['a', 1]]) }), /Map/],
];

describe('ParticipantRuntime never rejects', () => {
  it.each(UNSENDABLE)('answers 400 with a description when a SagaBusinessError carries %s', async (_what, make, reason) => {
    const { runtime, logger } = runtimeWith(() => {
      throw new SagaBusinessError('out of stock', make());
    });
    const info = request();
    const response = await runtime.handle({}, info);
    expect(response).toMatchObject({ requestId: info.requestId, status: 400, service: 'inventory', relatedServices: [] });
    const content = response.content as { code: string; message: string };
    expect(content.code).toBe('SAGA_RESPONSE_CONTENT_INVALID');
    expect(content.message).toContain('SagaBusinessError "out of stock"');
    expect(content.message).toMatch(reason);
    expect(content.message.length).toBeLessThanOrEqual(600);
    expectSendable(response);
    expect(logger.lines).toEqual([
      expect.objectContaining({ level: 'error', fields: expect.objectContaining({ requestId: info.requestId, target: 'inventory.reserve', status: 400 }) }),
    ]);
  });

  it.each(UNSENDABLE)('answers 500 with a description when a handler returns %s', async (_what, make, reason) => {
    const { runtime, logger } = runtimeWith(() => make());
    const response = await runtime.handle({}, request());
    expect(response.status).toBe(500);
    expect(response.content).toMatchObject({ code: 'SAGA_RESPONSE_CONTENT_INVALID', message: expect.stringMatching(reason) });
    expectSendable(response);
    expect(logger.lines.map((l) => l.level)).toEqual(['error']);
  });

  it('answers an asynchronous handler and a returned SagaResponse the same way, keeping its 400', async () => {
    const asyncBusiness = runtimeWith(async () => {
      throw new SagaBusinessError('declined', { amount: 5n });
    });
    expect(await asyncBusiness.runtime.handle({}, request())).toMatchObject({ status: 400, content: { code: 'SAGA_RESPONSE_CONTENT_INVALID' } });

    const refusal = runtimeWith(() => new SagaResponse({ requestId: 'ignored', status: 400, content: cycle() as never }));
    const refused = await refusal.runtime.handle({}, request());
    expect(refused).toMatchObject({ status: 400, content: { code: 'SAGA_RESPONSE_CONTENT_INVALID', message: expect.stringContaining('SagaResponse') } });
    expectSendable(refused);

    const related = runtimeWith(() => new SagaResponse({ requestId: 'ignored', content: { ok: true }, relatedServices: [7n as never] }));
    const bad = await related.runtime.handle({}, request());
    expect(bad).toMatchObject({ status: 500, relatedServices: [], content: { code: 'SAGA_RESPONSE_CONTENT_INVALID', message: expect.stringContaining('relatedServices') } });
    expectSendable(bad);

    // What can be sent goes as it was given.
    const fine = runtimeWith(() => new SagaResponse({ requestId: 'ignored', status: 400, content: { reason: 'no' }, relatedServices: ['billing'] }));
    const info = request();
    expect(await fine.runtime.handle({}, info)).toEqual({ requestId: info.requestId, service: 'inventory', status: 400, content: { reason: 'no' }, relatedServices: ['billing'] });
    expect(fine.logger.lines).toEqual([]);
  });

  it('answers 500 for anything else thrown, however hard it is to describe', async () => {
    const unreadable = Object.defineProperty(new Error('x'), 'message', {
      get: () => {
        throw new Error('message getter broke');
      },
    });
    const contentGetterThrows = Object.defineProperty(new SagaBusinessError('refused'), 'content', {
      get: () => {
        throw new Error('content getter broke');
      },
    });
    const cases: Array<[unknown, RegExp]> = [
      [new Error('db down'), /db down/],
      [unreadable, /cannot be described/],
      [Object.create(null), /{}/],
      [10n, /10/],
      [Symbol('odd'), /Symbol\(odd\)/],
      [{ toJSON: () => { throw new Error('x'); } }, /cannot be described/],
      ['x'.repeat(10_000), /characters\)$/],
    ];
    for (const [thrown, message] of cases) {
      const { runtime } = runtimeWith(() => {
        throw thrown;
      });
      const response = await runtime.handle({}, request());
      expect(response.status, String(message)).toBe(500);
      expect(response.content).toMatchObject({ code: 'SAGA_PARTICIPANT_FAILED', message: expect.stringMatching(message) });
      expect((response.content as { message: string }).message.length).toBeLessThanOrEqual(600);
      expectSendable(response);
    }
    const { runtime } = runtimeWith(() => {
      throw contentGetterThrows;
    });
    const refused = await runtime.handle({}, request());
    expect(refused).toMatchObject({ status: 400, content: { code: 'SAGA_RESPONSE_CONTENT_INVALID', message: expect.stringContaining('content getter broke') } });
  });

  it('still answers without a logger, and with a logger that throws', async () => {
    const bare = new ParticipantRuntime({ service: 'inventory', handlers: { inventory: () => ({ n: 1n }) } });
    expect(await bare.handle({}, request())).toMatchObject({ status: 500, content: { code: 'SAGA_RESPONSE_CONTENT_INVALID' } });
    const loud = new ParticipantRuntime({
      service: 'inventory',
      handlers: { inventory: () => ({ n: 1n }) },
      logger: {
        error: () => {
          throw new Error('logger broke');
        },
      },
    });
    expect(await loud.handle({}, request())).toMatchObject({ status: 500, content: { code: 'SAGA_RESPONSE_CONTENT_INVALID' } });
  });

  it('answers a re-sent request of an unsendable answer from memory, without running the handler again', async () => {
    for (const handler of [
      () => {
        throw new SagaBusinessError('out of stock', { n: 1n });
      },
      () => cycle(),
    ]) {
      const { runtime, calls } = runtimeWith(handler);
      const info = request();
      const first = await runtime.handle({}, info);
      const again = await runtime.handle({}, info);
      expect(again).toEqual(first);
      expect(calls()).toBe(1);
      expect({ handled: runtime.handled, duplicates: runtime.duplicates }).toEqual({ handled: 1, duplicates: 1 });
    }
    // A handler that failed is run again on a re-send: it may succeed this time.
    let failures = 1;
    const { runtime, calls } = runtimeWith(() => {
      if (failures-- > 0) throw new Error('flaky');
      return { ok: true };
    });
    const info = request();
    expect((await runtime.handle({}, info)).status).toBe(500);
    expect(await runtime.handle({}, info)).toMatchObject({ status: 200, content: { ok: true } });
    expect(calls()).toBe(2);
  });

  it('turns a refusal whose content cannot be sent into the saga onError sees, instead of crashing the participant', async () => {
    const broker = new InProcessBroker();
    broker.participant('inventory', {
      'inventory.reserve': () => {
        throw new SagaBusinessError('out of stock', { left: 0n });
      },
    });
    const seen: JsonValue[] = [];
    const saga = new Saga('unsendable-refusal')
      .remoteStep('reserve')
      .onExecute(() => new SagaRequest('inventory.reserve', {}))
      .onError(async (ctx, res) => {
        seen.push(await res.content<JsonValue>());
        ctx.refused = true;
      })
      .commit();
    const manager = managerWith({ broker, sagas: [saga], logger: {} });
    const execution = await manager.run(saga);
    expect(seen).toEqual([{ code: 'SAGA_RESPONSE_CONTENT_INVALID', message: expect.stringContaining('out of stock') }]);
    expect(execution.context.refused).toBe(true);
    expect(execution.status).toBe(SagaStatus.Finished);
  });
});

describe('ParticipantRuntime dedup', () => {
  it('answers a re-sent request id from memory until it is evicted, then runs the handler again', async () => {
    let n = 0;
    const { runtime, calls } = runtimeWith(() => ({ n: ++n }), { dedupCapacity: 2 });
    const [a, b, c] = [request(), request(), request()];
    expect((await runtime.handle({}, a)).content).toEqual({ n: 1 });
    expect((await runtime.handle({}, b)).content).toEqual({ n: 2 });
    // Within capacity: a is answered from memory.
    expect((await runtime.handle({}, a)).content).toEqual({ n: 1 });
    expect({ calls: calls(), duplicates: runtime.duplicates }).toEqual({ calls: 2, duplicates: 1 });
    // c pushes out the oldest, a: a re-sent a runs the handler again; b and c are still remembered.
    expect((await runtime.handle({}, c)).content).toEqual({ n: 3 });
    expect((await runtime.handle({}, a)).content).toEqual({ n: 4 });
    expect({ calls: calls(), duplicates: runtime.duplicates }).toEqual({ calls: 4, duplicates: 1 });
    expect((await runtime.handle({}, c)).content).toEqual({ n: 3 });
    expect({ calls: calls(), duplicates: runtime.duplicates }).toEqual({ calls: 4, duplicates: 2 });
    // a's second answer pushed out b.
    expect((await runtime.handle({}, b)).content).toEqual({ n: 5 });
    expect(runtime.handled).toBe(5);
  });

  it('remembers nothing with dedupCapacity 0, and refuses a capacity that is not a whole number >= 0', async () => {
    const { runtime, calls } = runtimeWith(() => ({ ok: true }), { dedupCapacity: 0 });
    const info = request();
    await runtime.handle({}, info);
    await runtime.handle({}, info);
    expect({ calls: calls(), duplicates: runtime.duplicates }).toEqual({ calls: 2, duplicates: 0 });
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      expect(() => new ParticipantRuntime({ service: 's', handlers: {}, dedupCapacity: bad })).toThrow(/dedupCapacity must be a whole number >= 0/);
    }
  });
});
