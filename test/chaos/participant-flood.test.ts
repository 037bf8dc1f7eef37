/**
 * Chaos: a participant that floods the broker (60,000 frames as fast as its socket takes them,
 * from a worker thread so that making them does not cost the orchestrator's thread) is throttled
 * without starving the others. Each connection is handled at most `maxFramesPerTurn` frames per
 * turn of the event loop, then paused until the next: the flooder gets at most that per turn
 * (counted against the turns this thread made), and the sagas of a well-behaved participant keep
 * finishing while the flood is still going, at a rate compared with the same sagas without it.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { connectParticipant, Saga, SagaManager, SagaRequest, SagaStatus, WebSocketBroker, type Participant } from '../../src/index.js';
import { collectingLogger, until } from '../support/harness.js';

const TOKENS = { inventory: 'tok-inventory', flood: 'tok-flood' } as const;
const FLOOD_FRAMES = 60_000;
const BUDGET = 64;
const GOOD_SAGAS = 150;

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const RESERVE = new Saga<{ orderId: string; reservationId?: string }>('flood-reserve')
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId }))
  .onSuccess(async (ctx, res) => {
    ctx.reservationId = (await res.content<{ id: string }>()).id;
  })
  .commit();

/**
 * The flooder, in a worker: connects as service `flood`, says hello, then sends `frames`
 * responses to requests that do not exist (each one is refused with SAGA_RESPONSE_UNEXPECTED,
 * which is not a protocol violation, so it is not closed for it), keeping at most 1 MiB of its
 * own unsent. It reads what the broker answers and reports how far it got.
 */
const FLOODER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.ws);
const ws = new WebSocket(workerData.url, { headers: { authorization: 'Bearer ' + workerData.token, 'x-sagachart-service': 'flood' } });
let errors = 0, sent = 0, closed = null;
ws.on('error', () => {});
ws.on('message', (data) => { const f = JSON.parse(data.toString()); if (f.type === 'welcome') pump(); else if (f.type === 'error') errors++; });
ws.on('close', (code) => { closed = code; report(); });
ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocol: 1, service: 'flood', targets: ['flood'] })));
function pump() {
  while (sent < workerData.frames && ws.readyState === 1 && ws.bufferedAmount < 1 << 20) {
    ws.send('{"type":"response","requestId":"flood/execute/1/' + sent++ + '","status":200}');
  }
  if (sent < workerData.frames && ws.readyState === 1) setImmediate(pump); else report();
}
function report() { parentPort.postMessage({ sent, errors, closed }); }
setInterval(report, 20).unref();
parentPort.on('message', (m) => { if (m === 'stop') { ws.terminate(); process.exit(0); } });
`;

interface FloodReport {
  sent: number;
  errors: number;
  closed: number | null;
}

function flood(url: string, frames: number) {
  const worker = new Worker(FLOODER, { eval: true, workerData: { url, token: TOKENS.flood, frames, ws: createRequire(import.meta.url).resolve('ws') } });
  const last: FloodReport = { sent: 0, errors: 0, closed: null };
  worker.on('message', (m: FloodReport) => Object.assign(last, m));
  closers.push(() => worker.terminate());
  return { last };
}

/** Counts turns of this thread's event loop (one per pass through the check phase). */
function turnCounter() {
  let turns = 0;
  let running = true;
  const tick = () => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop: () => {
      running = false;
    },
  };
}

async function setup() {
  const log = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: TOKENS, port: 0, logger: log, maxFramesPerTurn: BUDGET });
  closers.push(() => broker.close());
  const manager = new SagaManager({ broker, logger: collectingLogger() });
  closers.push(() => manager.close());
  let handled = 0;
  const inventory: Participant = await connectParticipant({
    url: broker.url,
    service: 'inventory',
    token: TOKENS.inventory,
    logger: collectingLogger(),
    handlers: {
      'inventory.reserve': (content) => {
        handled++;
        return { id: `r-${(content as { orderId: string }).orderId}` };
      },
    },
  });
  closers.push(() => inventory.close());
  /** Runs `count` sagas four at a time (or until `stop()` says so); returns how many finished right. */
  const runSagas = async (prefix: string, count: number, stop: () => boolean = () => false) => {
    let next = 0;
    let finished = 0;
    const lane = async () => {
      while (next < count && !stop()) {
        const orderId = `${prefix}-${next++}`;
        const execution = await manager.run(RESERVE, { context: { orderId } });
        if (execution.status === SagaStatus.Finished && execution.context.get('reservationId') === `r-${orderId}`) finished++;
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
    return finished;
  };
  return { broker, manager, runSagas, handled: () => handled };
}

describe('chaos: a participant that floods the broker', () => {
  it(`is held to ${BUDGET} frames per turn while a well-behaved participant's sagas keep finishing`, async () => {
    const { broker, runSagas, handled } = await setup();

    // Without the flood: the reference rate.
    await runSagas('warm', 40);
    const quietStart = performance.now();
    expect(await runSagas('quiet', GOOD_SAGAS)).toBe(GOOD_SAGAS);
    const quietRate = GOOD_SAGAS / ((performance.now() - quietStart) / 1000);

    // The flood: sagas run while it goes on, and stop when it is over.
    const flooder = flood(broker.url, FLOOD_FRAMES);
    await until(() => broker.stats.rejectedFrames > 1_000, 'the flood reaches the broker', 20_000);
    const rejectedAtStart = broker.stats.rejectedFrames;
    const turns = turnCounter();
    const floodStart = performance.now();
    const floodOver = () => broker.stats.rejectedFrames >= FLOOD_FRAMES;
    const finishedDuringFlood = await runSagas('flood', GOOD_SAGAS, floodOver);
    const floodSeconds = (performance.now() - floodStart) / 1000;
    const floodFramesMeanwhile = broker.stats.rejectedFrames - rejectedAtStart;
    const turnsMeanwhile = turns.turns;
    turns.stop();
    const floodRate = finishedDuringFlood / floodSeconds;
    const stillFlooding = !floodOver();
    console.info(
      `[participant-flood] quiet ${quietRate.toFixed(0)} sagas/s; during the flood ${finishedDuringFlood} sagas in ${floodSeconds.toFixed(2)} s ` +
        `(${floodRate.toFixed(0)} sagas/s, ${((100 * floodRate) / quietRate).toFixed(0)}% of quiet) while the broker handled ${floodFramesMeanwhile} flood frames ` +
        `(${(floodFramesMeanwhile / floodSeconds).toFixed(0)}/s) in ${turnsMeanwhile} turns (${(floodFramesMeanwhile / Math.max(1, turnsMeanwhile)).toFixed(1)} per turn); ` +
        `throttled ${broker.stats.throttled} times; flood still going at the end: ${stillFlooding}`,
    );

    // Every good saga that started during the flood finished, and right.
    expect(finishedDuringFlood).toBeGreaterThan(0);
    expect(handled()).toBe(40 + GOOD_SAGAS + finishedDuringFlood);
    // They did not wait for the flood to end: the whole batch finished while it was still going.
    expect(finishedDuringFlood).toBe(GOOD_SAGAS);
    expect(stillFlooding).toBe(true);
    // The flooder got no more than its budget per turn of the event loop.
    expect(floodFramesMeanwhile).toBeGreaterThan(0);
    expect(floodFramesMeanwhile).toBeLessThanOrEqual(BUDGET * (turnsMeanwhile + 1));
    expect(broker.stats.throttled).toBeGreaterThan(0);
    // Not starved: a floor well under what a run measures (about a third of the quiet rate; without
    // the budget, 8% and most sagas waited for the flood to end), for a loaded machine.
    expect(floodRate).toBeGreaterThanOrEqual(quietRate / 20);

    // The flood runs to its end; every frame of it was answered (read, not dropped), and the
    // flooder was never closed for it.
    await until(() => floodOver(), 'the broker has handled the whole flood', 60_000);
    await until(() => flooder.last.errors >= FLOOD_FRAMES, 'the flooder has read every answer', 20_000);
    expect(flooder.last).toMatchObject({ sent: FLOOD_FRAMES, errors: FLOOD_FRAMES, closed: null });
    expect(broker.stats.connections).toBe(2);
    // And afterwards the good participant is as fast as before.
    expect(await runSagas('after', 40)).toBe(40);
  });
});
