/**
 * What one peer can make the orchestrator hold, whatever it sends (DESIGN.md §6): error frames
 * echo at most a short preview of a bad value and obey `maxBufferedBytes` like requests do; a
 * connection that keeps sending invalid frames is closed (1008); a connection that has not said
 * hello, or has not even authenticated, costs a bounded amount and a bounded time; an upgrade
 * whose service is named like an `Object.prototype` member is refused (401) without an error.
 * Memory is measured in this process (the broker's), after a full GC, against the reported attack.
 */
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import {
  CloseCode,
  ManualClock,
  PROTOCOL_VERSION,
  WebSocketBroker,
  type OutgoingRequest,
  type WebSocketBrokerOptions,
} from '../../src/index.js';
import { collectingLogger, until } from '../support/harness.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const HOST = '127.0.0.1';
const TOKENS = { shipping: 'tok-shipping', warehouse: 'tok-warehouse' } as const;
const MiB = 1024 * 1024;

const brokers: WebSocketBroker[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

async function startBroker(options: Partial<WebSocketBrokerOptions> = {}) {
  const log = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: TOKENS, host: HOST, port: 0, logger: log, ...options });
  brokers.push(broker);
  return { broker, log };
}

interface Frame {
  type: string;
  code?: string;
  message?: string;
  requestId?: string;
  issues?: Array<{ path: string; message: string }>;
  [key: string]: unknown;
}

/** A raw `ws` client that records what the broker sends it (frames and their sizes). */
class Raw {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly sizes: number[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, service: string, token: string) {
    this.ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}`, 'x-sagachart-service': service } });
    sockets.push(this.ws);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: RawData) => {
      const text = data.toString();
      this.sizes.push(Buffer.byteLength(text));
      this.frames.push(JSON.parse(text) as Frame);
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string, service: keyof typeof TOKENS = 'shipping'): Promise<Raw> {
    const raw = new Raw(url, service, TOKENS[service]);
    await raw.opened;
    return raw;
  }

  async hello(): Promise<void> {
    this.ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, service: 'shipping', targets: ['shipping'] }));
    await until(() => this.frames.some((f) => f.type === 'welcome'), 'the welcome');
  }

  /** Stops reading: what the broker sends piles up in the kernel, then in the broker. */
  stopReading(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket.pause();
  }

  startReading(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket.resume();
  }

  /** Sends `text`, waiting while more than 1 MiB of this client's own output is unsent. */
  async sendPaced(text: string): Promise<void> {
    while (this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > MiB) await new Promise((r) => setTimeout(r, 2));
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }
}

/** Bytes this process holds (heap + array buffers), after a full collection. */
function held(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The reported attack: a response whose requestId is 900 KB and whose status is wrong. */
const HUGE_ID = 'x'.repeat(900_000);
const ATTACK_FRAME = `{"type":"response","requestId":"${HUGE_ID}","status":999}`;

function request(requestId: string, content: unknown): OutgoingRequest {
  return { requestId, uuid: 'u-1', sagaName: 'manual', step: 's', phase: 'execute', attempt: 1, target: 'shipping.book', content: content as never, deadline: null };
}

describe('error frames are bounded', () => {
  it('echoes at most a 128-character preview of a bad value, and caps the issues it lists', async () => {
    const { broker } = await startBroker();
    const raw = await Raw.open(broker.url);
    await raw.hello();

    raw.ws.send(ATTACK_FRAME);
    await until(() => raw.frames.length === 2, 'the error frame');
    const error = raw.frames[1]!;
    expect(error).toMatchObject({ type: 'error', code: 'SAGA_FRAME_INVALID' });
    expect(error.requestId!.length).toBeLessThanOrEqual(129);
    expect(HUGE_ID.startsWith(error.requestId!.slice(0, 128))).toBe(true);
    expect(raw.sizes[1]!).toBeLessThan(2_048);

    // 1,000 wrong targets: one issue each would be a frame bigger than the one that caused it.
    raw.ws.send(JSON.stringify({ type: 'hello', protocol: 1, service: 'shipping', targets: Array(1_000).fill('') }));
    await until(() => raw.frames.length === 3, 'the error frame for many issues');
    const many = raw.frames[2]!;
    expect(many.code).toBe('SAGA_FRAME_INVALID');
    expect(many.issues!.length).toBeLessThanOrEqual(10);
    expect(many.message).toMatch(/more/);
    expect(raw.sizes[2]!).toBeLessThan(4_096);
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('holds a few KiB, not 69 MiB, for a non-reading peer that sends 80 frames with a 900 KB bad requestId after hello', async () => {
    const { broker } = await startBroker();
    const raw = await Raw.open(broker.url);
    await raw.hello();
    raw.stopReading();
    const before = held();
    const rssBefore = process.memoryUsage().rss;

    for (let i = 0; i < 80; i++) await raw.sendPaced(ATTACK_FRAME);
    await until(() => broker.stats.rejectedFrames === 80, 'the broker read all 80 frames', 20_000);

    const grown = held() - before;
    const rssGrown = process.memoryUsage().rss - rssBefore;
    console.log(`80 x 900 KB bad frames after hello: held +${(grown / MiB).toFixed(2)} MiB, rss +${(rssGrown / MiB).toFixed(1)} MiB, queued ${broker.stats.bufferedBytes} B`);
    // The broker may queue up to maxBufferedBytes (8 MiB) for a peer; these error frames are ~30 KiB.
    expect(broker.stats.bufferedBytes).toBeLessThan(64 * 1024);
    expect(grown).toBeLessThan(8 * MiB);
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('holds a bounded amount for a non-reading peer that never says hello, and closes it (1008) past maxInvalidFrames', async () => {
    const { broker, log } = await startBroker();
    const raw = await Raw.open(broker.url);
    raw.stopReading();
    const before = held();

    let sent = 0;
    while (sent < 150 && broker.stats.connections === 1) {
      await raw.sendPaced(ATTACK_FRAME);
      sent++;
    }
    await until(() => log.lines.some((l) => l.fields?.code === 'SAGA_TOO_MANY_INVALID_FRAMES') || broker.stats.rejectedFrames === 150, 'the broker read them or closed the connection', 20_000);
    const grown = held() - before;
    console.log(`${sent} x 900 KB bad frames without hello: held +${(grown / MiB).toFixed(2)} MiB, rejected ${broker.stats.rejectedFrames}`);
    expect(grown).toBeLessThan(8 * MiB);
    // 100 answered, the 101st closes it: what a peer without hello can make the broker answer.
    expect(broker.stats.rejectedFrames).toBe(101);
    expect(log.lines.find((l) => l.fields?.code === 'SAGA_TOO_MANY_INVALID_FRAMES')?.level).toBe('warn');
    raw.startReading();
    expect((await raw.closed).code).toBe(CloseCode.PolicyViolation);
    expect(raw.frames.at(-1)).toMatchObject({ type: 'error', code: 'SAGA_TOO_MANY_INVALID_FRAMES' });
    expect(raw.frames.slice(0, -1).every((f) => f.code === 'SAGA_FRAME_INVALID')).toBe(true);
  });

  it('drops the error frames of a peer whose send buffer is over maxBufferedBytes, and closes it with 1013', async () => {
    const { broker, log } = await startBroker({ maxBufferedBytes: 1_024 });
    const raw = await Raw.open(broker.url);
    await raw.hello();
    raw.stopReading();
    // A request bigger than the kernel takes while the peer does not read stays queued here.
    broker.send(request('big/execute/1/s', 'x'.repeat(8 * MiB)));
    await until(() => broker.stats.bufferedBytes > 1_024, 'the request is queued in the broker');

    raw.ws.send('not json');
    await until(() => broker.stats.droppedErrorFrames === 1, 'the error frame was dropped');
    expect(log.lines.some((l) => l.fields?.code === 'SAGA_SEND_BUFFER_FULL')).toBe(true);
    raw.startReading();
    const closed = await raw.closed;
    expect(closed.code).toBe(CloseCode.TryAgainLater);
    expect(raw.frames.map((f) => f.type)).toEqual(['welcome', 'request']);
    expect(broker.stats).toMatchObject({ rejectedFrames: 1, droppedErrorFrames: 1 });
  });
});

describe('invalid frames in a window', () => {
  it('answers maxInvalidFrames invalid frames per window, closes with 1008 past it, and starts counting again in a new window', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ clock, maxInvalidFrames: 5, invalidFrameWindowMs: 1_000 });
    const raw = await Raw.open(broker.url);
    await raw.hello();
    for (let i = 0; i < 5; i++) raw.ws.send('nope');
    await until(() => raw.frames.length === 6, 'five error frames');
    clock.advance(1_000); // a new window
    for (let i = 0; i < 5; i++) raw.ws.send('nope');
    await until(() => raw.frames.length === 11, 'five more');
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
    raw.ws.send('nope');
    expect((await raw.closed).code).toBe(CloseCode.PolicyViolation);
    expect(raw.frames.slice(1).map((f) => f.code)).toEqual([...Array(10).fill('SAGA_FRAME_NOT_JSON'), 'SAGA_TOO_MANY_INVALID_FRAMES']);
    await until(() => broker.stats.connections === 0, 'the broker dropped the connection');
  });

  it('refuses a second hello on a connection (SAGA_HELLO_REPEATED): a welcome each would be an echo for free', async () => {
    const { broker } = await startBroker();
    const raw = await Raw.open(broker.url);
    await raw.hello();
    raw.ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, service: 'shipping', targets: ['shipping'] }));
    await until(() => raw.frames.length === 2, 'the refusal');
    expect(raw.frames[1]).toMatchObject({ type: 'error', code: 'SAGA_HELLO_REPEATED' });
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('connections that have not joined', () => {
  it('refuses with 503 upgrades past maxPendingConnections (authenticated, no hello yet), and lets one in once another joins', async () => {
    const { broker } = await startBroker({ maxPendingConnections: 2 });
    const a = await Raw.open(broker.url);
    await Raw.open(broker.url);
    await expect(Raw.open(broker.url)).rejects.toThrow(/503/);
    expect(broker.stats).toMatchObject({ connections: 2, pending: 2 });
    await a.hello();
    expect(broker.stats.pending).toBe(1);
    await Raw.open(broker.url);
    expect(broker.stats).toMatchObject({ connections: 3, pending: 2 });
  });

  it('refuses with 503 an upgrade whose auth check does not answer within helloTimeoutMs, and frees its place', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ clock, helloTimeoutMs: 1_000, maxPendingConnections: 1, auth: (service) => (service === 'warehouse' ? new Promise<boolean>(() => undefined) : true) });
    const stuck = Raw.open(broker.url, 'warehouse');
    stuck.catch(() => undefined);
    await until(() => broker.stats.pending === 1, 'the upgrade waits for its auth check');
    await expect(Raw.open(broker.url)).rejects.toThrow(/503/);
    clock.advance(1_000);
    await expect(stuck).rejects.toThrow(/503/);
    await until(() => broker.stats.pending === 0, 'the place is free');
    const ok = await Raw.open(broker.url);
    await ok.hello();
  });

  it('closes a connection with no hello within helloTimeoutMs (on the injected clock) with 1008', async () => {
    const clock = new ManualClock();
    // Far longer than the test on the wall clock: only the injected clock can close it in time.
    const { broker } = await startBroker({ clock, helloTimeoutMs: 600_000 });
    const raw = await Raw.open(broker.url);
    clock.advance(599_999);
    raw.ws.send('nope'); // a round trip: the broker has read everything before it answers
    await until(() => raw.frames.length === 1, 'the answer');
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
    clock.advance(1);
    expect((await raw.closed).code).toBe(CloseCode.PolicyViolation);
    expect(raw.frames.map((f) => f.code)).toEqual(['SAGA_FRAME_NOT_JSON', 'SAGA_HELLO_TIMEOUT']);
  });

  it('logs refused upgrades at most once a second (on the injected clock), counts them all, and echoes a bounded service name', async () => {
    const clock = new ManualClock();
    const { broker, log } = await startBroker({ clock });
    const longName = 's'.repeat(8_000);
    const bodies: string[] = [];
    for (let i = 0; i < 20; i++) {
      bodies.push(
        await new Promise<string>((resolve) => {
          const ws = new WebSocket(broker.url, { headers: { authorization: 'Bearer wrong', 'x-sagachart-service': longName } });
          sockets.push(ws);
          ws.on('error', () => undefined);
          ws.on('unexpected-response', (_req, res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(`${res.statusCode} ${body}`));
          });
        }),
      );
    }
    expect(bodies.every((b) => b.startsWith('401 '))).toBe(true);
    expect(Math.max(...bodies.map((b) => b.length))).toBeLessThan(400);
    expect(log.lines.filter((l) => l.message.startsWith('refused')).length).toBe(1);
    clock.advance(1_000);
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(broker.url, { headers: { authorization: 'Bearer wrong', 'x-sagachart-service': 'shipping' } });
      sockets.push(ws);
      ws.on('error', () => undefined);
      ws.on('unexpected-response', () => resolve());
    });
    const refusals = log.lines.filter((l) => l.message.startsWith('refused'));
    expect(refusals.length).toBe(2);
    expect(refusals[1]!.fields).toMatchObject({ status: 401, suppressed: 19 });
    expect(broker.stats.refusedUpgrades).toBe(21);
  });
});

describe('service names that are Object.prototype members', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])('refuses %s with 401 and logs no error', async (service) => {
    const { broker, log } = await startBroker();
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(broker.url, { headers: { authorization: 'Bearer x', 'x-sagachart-service': service } });
      sockets.push(ws);
      ws.on('error', () => undefined);
      ws.on('open', () => reject(new Error('the upgrade was accepted')));
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    });
    expect(status).toBe(401);
    expect(log.lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(broker.stats.refusedUpgrades).toBe(1);
  });
});
