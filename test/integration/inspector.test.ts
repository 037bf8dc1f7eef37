/**
 * The Stately inspector over a real WebSocket: @statelyai/inspect's WebSocket inspector, attached
 * to SagaManager({ inspect }), sends its frames to a receiver on a free port. An execution of a
 * saga with a conditional step (nested steps, one of them remote) pauses on disk, is restored and
 * finished, and the receiver finds one actor with the execution's uuid from start to end and the
 * definition whole, nested steps included, with the serialization depth of inspectorOptions();
 * with the inspector's default depth, the same definition arrives cut.
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { InspectionEvent } from 'xstate';
import { InMemorySagaRepository, inspectorOptions, Saga, SagaManager, SagaRequest, SagaStatus, type SagaExecution } from '../../src/index.js';
import { ManualBroker, until } from '../support/harness.js';

interface Frame {
  type: string;
  sessionId: string;
  name?: string;
  rootId?: string;
  definition?: string;
  snapshot?: { status?: string; value?: unknown };
  event?: { type: string };
}

const EXPRESS = new Saga('express')
  .localStep('pack')
  .onExecute((ctx) => {
    ctx.packed = true;
  })
  .remoteStep('book-courier')
  .onExecute(() => new SagaRequest('courier.book', { speed: 'express' }))
  .onFailure(() => new SagaRequest('courier.cancel', {}))
  .commit();
const STANDARD = new Saga('standard').remoteStep('post').onExecute(() => new SagaRequest('post.send', {})).commit();
const SHIP = new Saga('ship-order')
  .conditionalStep('shipping')
  .ifThen((ctx) => ctx.express === true, EXPRESS)
  .elseThen(STANDARD)
  .remoteStep('notify')
  .onExecute(() => new SagaRequest('mail.send', { to: 'buyer' }))
  .commit();

/** A receiver of the inspector's frames on a free port of 127.0.0.1. */
async function receiver(): Promise<{ url: string; frames: Frame[]; connected: Promise<void>; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const frames: Frame[] = [];
  const connected = new Promise<void>((resolve) =>
    server.on('connection', (ws) => {
      ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame));
      resolve();
    }),
  );
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    frames,
    connected,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of server.clients) ws.terminate();
        server.close(() => resolve());
      }),
  };
}

/** Every state key of a definition, by path (`running.shipping.running-on-success.express.pack`). */
function statePaths(node: { states?: Record<string, unknown> }, path: string[] = []): string[] {
  return Object.entries(node.states ?? {}).flatMap(([key, child]) => [[...path, key].join('.'), ...statePaths(child as { states?: Record<string, unknown> }, [...path, key])]);
}

const CUT = /"\[(Object|Array)\]"/;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the Stately inspector over WebSocket', () => {
  it('gets one actor with the execution uuid from start to end, paused on disk, restored by another manager and finished, and the whole definition', async () => {
    const [whole, cutDefault] = [await receiver(), await receiver()];
    cleanups.push(whole.close, cutDefault.close);
    const options = inspectorOptions([SHIP]);
    expect(options.serializationDepthLimit).toBeGreaterThan(10);
    const inspector = createWebSocketInspector({ url: whole.url, ...options });
    // The inspector's own default depth, for comparison: the same events, to another receiver.
    const byDefault = createWebSocketInspector({ url: cutDefault.url });
    cleanups.push(
      () => inspector.stop(),
      () => byDefault.stop(),
    );
    await Promise.all([whole.connected, cutDefault.connected]);
    const inspect = (event: InspectionEvent) => [inspector.inspect, byDefault.inspect].forEach((i) => i.next?.(event));

    const repository = new InMemorySagaRepository();
    const first = new ManualBroker();
    const starter = new SagaManager({ repository, broker: first, sagas: [SHIP], inspect });
    cleanups.push(() => starter.close());
    const paused = await starter.run(SHIP, { context: { express: true }, pauseOnDisk: true });
    expect(paused.status).toBe(SagaStatus.Paused);
    expect(starter.liveCount).toBe(0);
    const booking = first.last('courier.book');
    expect(booking.step).toBe('shipping/express/book-courier');
    await starter.close();

    // Another manager on the same repository takes the answer: the execution is restored there.
    const second = new ManualBroker();
    const finisher = new SagaManager({ repository, broker: second, sagas: [SHIP], inspect });
    cleanups.push(() => finisher.close());
    await finisher.resume({ requestId: booking.requestId, status: 200, content: { courier: 'c-1' }, relatedServices: [] });
    await until(() => second.requests.some((r) => r.target === 'mail.send'), 'notify requested');
    // Paused on disk again between the two answers: the next one restores it once more.
    second.answer(second.last('mail.send'));
    const done: SagaExecution = await finisher.waitFor(paused.uuid, { timeoutMs: 10_000 });
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.packed).toBe(true);

    const last = (frames: Frame[]) => frames.filter((f) => f.type === '@xstate.snapshot').at(-1);
    await until(() => last(whole.frames)?.snapshot?.status === 'done' && last(cutDefault.frames)?.snapshot?.status === 'done', 'the inspectors sent the last snapshot', 10_000);

    const frames = whole.frames;
    expect(new Set(frames.map((f) => f.type))).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    // One actor: every frame names the execution's uuid as its session (and root), from the first to the last.
    expect(new Set(frames.map((f) => f.sessionId))).toEqual(new Set([paused.uuid]));
    expect(new Set(frames.map((f) => f.rootId))).toEqual(new Set([paused.uuid]));
    const actors = frames.filter((f) => f.type === '@xstate.actor');
    // Announced once by each manager that ran it, under the same id and name: the inspector shows one actor.
    expect(actors).toHaveLength(2);
    expect(new Set(actors.map((a) => a.sessionId))).toEqual(new Set([paused.uuid]));
    expect(new Set(actors.map((a) => a.name))).toEqual(new Set([SHIP.id]));
    expect(frames[0]?.type).toBe('@xstate.actor');
    const events = frames.filter((f) => f.type === '@xstate.event').map((f) => f.event?.type);
    expect(events[0]).toBe('xstate.init');
    expect(events).toContain('saga.start');
    expect(events.filter((t) => t === 'saga.response').length).toBeGreaterThanOrEqual(2);
    const snapshots = frames.filter((f) => f.type === '@xstate.snapshot').map((f) => f.snapshot!);
    expect(snapshots.map((s) => JSON.stringify(s.value))).toContain(JSON.stringify({ running: { shipping: { 'running-on-success': { express: { 'book-courier': 'paused-by-on-execute' } } } } }));
    expect(last(frames)?.snapshot).toMatchObject({ status: 'done', value: 'finished' });

    // The definition, whole: no node cut, the nested steps' states there.
    for (const actor of actors) {
      expect(actor.definition).toBeTypeOf('string');
      expect(actor.definition).not.toMatch(CUT);
      const paths = statePaths(JSON.parse(actor.definition!) as { states?: Record<string, unknown> });
      expect(paths).toEqual(expect.arrayContaining(['running.shipping.running-on-success.express.pack.finished', 'running.shipping.running-on-success.express.book-courier.paused-by-on-execute', 'running.shipping.running-on-success.standard.post.finished', 'running.notify.finished']));
    }
    // Whole snapshots too: no part of any was cut.
    for (const f of frames) expect(JSON.stringify(f.snapshot ?? null)).not.toMatch(CUT);

    // The inspector's default depth (10) cuts the same definition: why the option is needed.
    const cutActor = cutDefault.frames.find((f) => f.type === '@xstate.actor');
    expect(cutActor?.sessionId).toBe(paused.uuid);
    expect(cutActor?.definition).toMatch(CUT);
    expect(statePaths(JSON.parse(cutActor!.definition!) as { states?: Record<string, unknown> })).not.toContain('running.shipping.running-on-success.express.pack.finished');
  });

  it('announces an execution once when the same manager restores it from disk for each answer', async () => {
    const sink = await receiver();
    cleanups.push(sink.close);
    const inspector = createWebSocketInspector({ url: sink.url, ...inspectorOptions([SHIP]) });
    cleanups.push(() => inspector.stop());
    await sink.connected;
    const broker = new ManualBroker();
    const manager = new SagaManager({ repository: new InMemorySagaRepository(), broker, sagas: [SHIP], inspect: inspector.inspect, pausedCacheSize: 0 });
    cleanups.push(() => manager.close());
    const paused = await manager.run(SHIP, { context: { express: false }, pauseOnDisk: true });
    broker.answer(broker.last('post.send'));
    await until(() => broker.requests.some((r) => r.target === 'mail.send'), 'notify requested');
    broker.answer(broker.last('mail.send'));
    expect((await manager.waitFor(paused.uuid, { timeoutMs: 10_000 })).status).toBe(SagaStatus.Finished);
    await until(() => sink.frames.filter((f) => f.type === '@xstate.snapshot').at(-1)?.snapshot?.status === 'done', 'the last snapshot', 10_000);
    const actors = sink.frames.filter((f) => f.type === '@xstate.actor');
    expect(actors.map((a) => a.sessionId)).toEqual([paused.uuid]);
    expect(new Set(sink.frames.map((f) => f.sessionId))).toEqual(new Set([paused.uuid]));
    expect(actors[0]!.definition).not.toMatch(CUT);
  });
});
