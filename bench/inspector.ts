// Cost of watching executions: the same in-process saga loop with no inspector, and with
// @statelyai/inspect's WebSocket inspector sending every event to a local receiver.
// Run: node --import tsx bench/inspector.ts [--sagas 3000]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createWebSocketInspector } from '@statelyai/inspect';
import { WebSocketServer } from 'ws';
import { InProcessBroker, Saga, SagaManager, SagaRequest, type SagaManagerOptions } from '../src/index.js';

const { values } = parseArgs({ options: { sagas: { type: 'string', default: '3000' } } });
const total = Number(values.sagas);

// Steps only, as in the other figures (the two-phase commit adds its own frames).
const SAGA = new Saga('inspected', { twoPhaseCommit: false })
  .remoteStep('reserve')
  .onExecute(() => new SagaRequest('svc.reserve', { pad: 'p'.repeat(140) }))
  .onSuccess((ctx) => {
    ctx.reserved = true;
  })
  .remoteStep('charge')
  .onExecute(() => new SagaRequest('svc.charge', {}))
  .remoteStep('ship')
  .onExecute(() => new SagaRequest('svc.ship', {}))
  .commit();

// A receiver that counts what the inspector sends.
const http = createServer();
const wss = new WebSocketServer({ server: http });
let frames = 0;
let bytes = 0;
wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ((frames += 1), (bytes += data.length))));
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;

async function loop(inspect: SagaManagerOptions['inspect']): Promise<number> {
  const broker = new InProcessBroker();
  broker.participant('svc', { svc: () => ({}) });
  const manager = new SagaManager({ broker, sagas: [SAGA], recoverIntervalMs: 0, ...(inspect ? { inspect } : {}) });
  for (let i = 0; i < 200; i++) await manager.run(SAGA);
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next++ < total) await manager.run(SAGA);
    }),
  );
  const perSec = total / (Number(process.hrtime.bigint() - t0) / 1e9);
  await manager.close();
  return perSec;
}

const plain = await loop(undefined);
const inspector = createWebSocketInspector({ url });
await new Promise((r) => setTimeout(r, 300));
frames = 0;
bytes = 0;
const inspected = await loop(inspector.inspect);
await new Promise((r) => setTimeout(r, 300));
inspector.stop();
const result = {
  bench: 'inspector',
  sagas: total,
  sagasPerSecPlain: Math.round(plain),
  sagasPerSecInspected: Math.round(inspected),
  ratio: +(inspected / plain).toFixed(2),
  framesPerSaga: Math.round(frames / (total + 200)),
  kbPerSaga: +(bytes / (total + 200) / 1024).toFixed(1),
};
wss.close();
http.close();
console.log('\n| sagas | no inspector | with @statelyai/inspect (WebSocket) | ratio | frames per saga | KB per saga |');
console.log('|---|---|---|---|---|---|');
console.log(`| ${total} | ${result.sagasPerSecPlain}/s | ${result.sagasPerSecInspected}/s | ${result.ratio} | ${result.framesPerSaga} | ${result.kbPerSaga} |`);
console.log(JSON.stringify(result));
