/**
 * The WebSocket transport end to end (DESIGN.md §6): `WebSocketBroker` on a real socket bound to
 * 127.0.0.1 (port 0), participants through `connectParticipant` or raw `ws` clients speaking the
 * protocol by hand, and a `SagaManager` on top. Routing, holding, re-sending after a reconnect,
 * duplicate suppression, every kind of bad input (error frame or close code, and the orchestrator
 * carries on), wrong-service responses, heartbeats, back-pressure, timeouts on fake time over the
 * wire, and refused participants.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type ClientOptions, type RawData } from 'ws';
import {
  CloseCode,
  connectParticipant,
  formatRequestId,
  ManualClock,
  PROTOCOL_VERSION,
  Saga,
  SagaBusinessError,
  SagaManager,
  SagaParticipantRefusedError,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  WebSocketBroker,
  type OutgoingRequest,
  type Participant,
  type ParticipantHandlers,
  type ParticipantOptions,
  type ParticipantRequestInfo,
  type SagaManagerOptions,
  type SagaResponseData,
  type WebSocketBrokerOptions,
} from '../../src/index.js';
import { collectingLogger, deferred, never, rows, settle, sleep, stepOf, until } from '../support/harness.js';
import { orderSaga, type Order } from '../support/ws-order.js';

// ------------------------------------------------------------------------------------------------
// Cleanup: everything a test opens is closed after it, participants first (so that nothing
// reconnects), then raw sockets, managers, brokers, and the helper servers.

const participants: Participant[] = [];
const rawSockets: WebSocket[] = [];
const managers: SagaManager[] = [];
const brokers: WebSocketBroker[] = [];
const servers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(participants.splice(0).map((p) => p.close()));
  for (const ws of rawSockets.splice(0)) ws.terminate();
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await Promise.all(brokers.splice(0).map((b) => b.close()));
  await Promise.all(servers.splice(0).map((close) => close()));
});

const TOKENS = {
  inventory: 'tok-inventory',
  payment: 'tok-payment',
  shipping: 'tok-shipping',
  warehouse: 'tok-warehouse',
  carrier: 'tok-carrier',
} as const;
type Service = keyof typeof TOKENS;

const HOST = '127.0.0.1';


/** Keeps a pending run from becoming an unhandled rejection when the manager closes in cleanup. */
function track<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

async function startBroker(options: Partial<WebSocketBrokerOptions> = {}) {
  const log = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: TOKENS, host: HOST, port: 0, logger: log, ...options });
  brokers.push(broker);
  return { broker, log };
}

function startManager(options: SagaManagerOptions): SagaManager {
  const manager = new SagaManager({ logger: collectingLogger(), ...options });
  managers.push(manager);
  return manager;
}

async function participant(url: string, service: Service, handlers: ParticipantHandlers, extra: Partial<ParticipantOptions> = {}): Promise<Participant> {
  const p = await connectParticipant({ url, service, token: TOKENS[service], handlers, logger: collectingLogger(), ...extra });
  participants.push(p);
  return p;
}

// ------------------------------------------------------------------------------------------------
// Raw protocol clients.

interface Frame {
  type: string;
  code?: string;
  message?: string;
  requestId?: string;
  issues?: Array<{ path: string; message: string }>;
  [key: string]: unknown;
}

/** A `ws` client authenticated as `service` that records every frame the broker sends it. */
class RawClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  #read = 0;

  constructor(
    url: string,
    readonly service: string,
    token: string,
    options: ClientOptions = {},
  ) {
    this.ws = new WebSocket(url, { ...options, headers: { authorization: `Bearer ${token}`, 'x-sagachart-service': service } });
    rawSockets.push(this.ws);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: RawData) => this.frames.push(JSON.parse(data.toString()) as Frame));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
  }

  static async open(url: string, service: Service, options: ClientOptions = {}): Promise<RawClient> {
    const client = new RawClient(url, service, TOKENS[service], options);
    await client.opened;
    return client;
  }

  send(data: unknown): void {
    this.ws.send(typeof data === 'string' ? data : JSON.stringify(data));
  }

  /** The next frame not read yet. */
  async next(what = 'a frame from the broker'): Promise<Frame> {
    await until(() => this.frames.length > this.#read, what);
    return this.frames[this.#read++]!;
  }

  /** Says hello with `targets` (its whole service by default) and returns the welcome. */
  async hello(targets: string[] = [this.service], service = this.service): Promise<Frame> {
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION, service, targets });
    const welcome = await this.next('the welcome');
    expect(welcome).toMatchObject({ type: 'welcome', protocol: PROTOCOL_VERSION, service: this.service });
    return welcome;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Pings the broker and waits for its pong: the broker has then read everything this client
   * sent before (its pongs to the broker's pings included), since both ends keep the order.
   */
  async roundTrip(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.ws.once('pong', () => resolve());
      this.ws.ping();
    });
  }
}

/** Tries an upgrade with these headers; resolves with the HTTP status it was refused with. */
function refusedUpgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    rawSockets.push(ws);
    ws.on('error', () => undefined);
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
  });
}

/** A TCP proxy in front of the broker, whose connections the test can cut (and refuse for a while). */
async function tcpProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const attempts: number[] = [];
  let blocked = false;
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (blocked) {
      attempts.push(Date.now());
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, HOST);
    upstream.on('error', () => undefined);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  servers.push(async () => {
    dropAll();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `ws://${HOST}:${port}`,
    /** Times of connection attempts refused while blocked. */
    attempts,
    /** Refuses new connections (accepts the TCP connection, then closes it at once). */
    block: () => {
      blocked = true;
    },
    allow: () => {
      blocked = false;
    },
    /** Cuts every proxied connection, both ways. */
    dropAll,
  };
}

// ------------------------------------------------------------------------------------------------
// Sagas.



/** inventory.reserve (compensated by inventory.release), then payment.charge. */
// The sagas here skip the two-phase commit, so frame counts are the steps' own; the commit over
// the wire has its own tests (websocket-transactions.test.ts).
const ORDER = orderSaga('ws-order', { twoPhaseCommit: false });

/** inventory.reserve only. */
const RESERVE = new Saga<Order>('ws-reserve', { twoPhaseCommit: false })
  .remoteStep('reserve')
  .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId }))
  .onSuccess(async (ctx, res) => {
    ctx.reservationId = (await res.content<{ id: string }>()).id;
  })
  .commit();

/** Well-behaved inventory and payment handlers that write what they handle to `seen`. */
function goodHandlers(seen: string[]) {
  const inventory: ParticipantHandlers = {
    'inventory.reserve': (content, info) => {
      seen.push(info.target);
      return { id: `r-${(content as { orderId: string }).orderId}` };
    },
    'inventory.release': (_content, info) => {
      seen.push(info.target);
      return { released: true };
    },
  };
  const payment: ParticipantHandlers = {
    payment: (content, info) => {
      seen.push(info.target);
      return { id: `c-${(content as { orderId: string }).orderId}` };
    },
  };
  return { inventory, payment };
}

/**
 * A broker, a manager and good inventory and payment participants; `carriesOn()` runs a good
 * saga through them and checks it finishes (the orchestrator is still fine after bad input).
 */
async function orchestra(options: Partial<WebSocketBrokerOptions> = {}) {
  const { broker, log } = await startBroker(options);
  const manager = startManager({ broker });
  const seen: string[] = [];
  const handlers = goodHandlers(seen);
  await participant(broker.url, 'inventory', handlers.inventory);
  await participant(broker.url, 'payment', handlers.payment);
  let n = 0;
  const carriesOn = async () => {
    const orderId = `good-${++n}`;
    const before = seen.length;
    const execution = await manager.run(ORDER, { context: { orderId } });
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, false],
      ['charge', SagaStepStatus.Finished, false],
    ]);
    expect(execution.context.toJSON()).toEqual({ orderId, reservationId: `r-${orderId}`, chargeId: `c-${orderId}` });
    expect(seen.slice(before)).toEqual(['inventory.reserve', 'payment.charge']);
  };
  return { broker, log, manager, seen, carriesOn };
}

// ================================================================================================

describe('routing', () => {
  it('round-robins the requests of a target over two connections of the same service', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const got: Record<string, string[]> = { A: [], B: [], payment: [] };
    const inventoryAs = (name: 'A' | 'B'): ParticipantHandlers => ({
      inventory: (content, info) => {
        got[name]!.push(info.target);
        return { id: `${name}-${(content as { orderId: string }).orderId}` };
      },
    });
    await participant(broker.url, 'inventory', inventoryAs('A'), { instance: 'A' });
    await participant(broker.url, 'inventory', inventoryAs('B'), { instance: 'B' });
    await participant(broker.url, 'payment', {
      'payment.charge': (_content, info) => {
        got.payment!.push(info.target);
        return { id: 'c' };
      },
    });
    expect(broker.connectedServices().sort()).toEqual(['inventory', 'payment']);
    expect(broker.stats.connections).toBe(3);

    const executions = await Promise.all([1, 2, 3, 4].map((i) => manager.run(ORDER, { context: { orderId: `o-${i}` } })));

    expect(executions.map((e) => e.status)).toEqual(Array(4).fill(SagaStatus.Finished));
    expect(got.A).toEqual(['inventory.reserve', 'inventory.reserve']);
    expect(got.B).toEqual(['inventory.reserve', 'inventory.reserve']);
    expect(got.payment).toEqual(Array(4).fill('payment.charge'));
    // Each saga's reservation came from one of the two connections, two each.
    const by = executions.map((e) => String(e.context.get('reservationId')).slice(0, 1)).sort();
    expect(by).toEqual(['A', 'A', 'B', 'B']);
    expect(broker.stats).toMatchObject({ sent: 8, responses: 8, resent: 0, held: 0, inflight: 0, rejectedFrames: 0 });
  });

  it('routes a target to connections that declare it, or declare its whole service, and to no other', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const perAction: string[] = [];
    const wholeService: string[] = [];
    // Declares one action of inventory only.
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (content, info) => {
        perAction.push(info.target);
        return { id: `pa-${(content as { orderId: string }).orderId}` };
      },
    });
    // Declares the whole inventory service: every inventory.* target.
    await participant(broker.url, 'inventory', {
      inventory: (content, info) => {
        wholeService.push(info.target);
        return info.target === 'inventory.reserve' ? { id: `ws-${(content as { orderId: string }).orderId}` } : { released: true };
      },
    });
    // Declares payment.charge only; declines orders whose id says so (400), so reserve is compensated.
    await participant(broker.url, 'payment', {
      'payment.charge': (content) => {
        if ((content as { orderId: string }).orderId.startsWith('decline')) throw new SagaBusinessError('card declined');
        return { id: 'c' };
      },
    });

    const executions = await Promise.all(
      ['ok-1', 'decline-2', 'ok-3', 'decline-4'].map((orderId) => manager.run(ORDER, { context: { orderId }, raiseOnError: false })),
    );

    expect(executions.map((e) => e.status)).toEqual([SagaStatus.Finished, SagaStatus.Errored, SagaStatus.Finished, SagaStatus.Errored]);
    for (const declined of [executions[1]!, executions[3]!]) {
      expect(rows(declined)).toEqual([
        ['reserve', SagaStepStatus.Finished, true],
        ['charge', SagaStepStatus.ErroredByOnExecute, false], // a 400 without onError
      ]);
    }
    // inventory.reserve alternates over both; inventory.release only goes where it is declared.
    expect(perAction).toEqual(['inventory.reserve', 'inventory.reserve']);
    expect(wholeService.filter((t) => t === 'inventory.reserve')).toHaveLength(2);
    expect(wholeService.filter((t) => t === 'inventory.release')).toHaveLength(2);
    expect(wholeService).toHaveLength(4);
  });
});

describe('holding requests until a participant connects', () => {
  it('finishes a saga started before any participant was connected, once they connect', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const seen: string[] = [];
    const handlers = goodHandlers(seen);

    const running = track(manager.run(ORDER, { context: { orderId: 'early' }, uuid: 'exec-early' }));
    await until(() => broker.stats.held === 1, 'the reserve request is held');
    const paused = await manager.get('exec-early');
    expect(paused.status).toBe(SagaStatus.Paused);
    expect(stepOf(paused, 'reserve').status).toBe(SagaStepStatus.PausedByOnExecute);
    expect(broker.stats.sent).toBe(0);

    await participant(broker.url, 'inventory', handlers.inventory);
    await until(() => broker.stats.held === 1 && broker.stats.responses === 1, 'reserve answered, charge held');
    expect(seen).toEqual(['inventory.reserve']);
    await participant(broker.url, 'payment', handlers.payment);
    const execution = await running;

    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.toJSON()).toEqual({ orderId: 'early', reservationId: 'r-early', chargeId: 'c-early' });
    expect(seen).toEqual(['inventory.reserve', 'payment.charge']);
    expect(broker.stats).toMatchObject({ held: 0, sent: 2, responses: 2, droppedHeld: 0 });
  });

  it('holds a request whose target no connection declares, even if its service is connected for other targets', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const count = new Saga<Order>('ws-count', { twoPhaseCommit: false })
      .remoteStep('count')
      .onExecute(() => new SagaRequest('inventory.count', {}))
      .onSuccess(async (ctx, res) => {
        ctx.count = (await res.content<{ count: number }>()).count;
      })
      .commit();
    const reserveOnly: string[] = [];
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (_c, info) => {
        reserveOnly.push(info.target);
        return {};
      },
    });

    const running = track(manager.run(count, { context: { orderId: 'c-1' } }));
    await until(() => broker.stats.held === 1, 'inventory.count is held');
    await sleep(50);
    expect(reserveOnly).toEqual([]);
    expect(broker.stats.sent).toBe(0);

    await participant(broker.url, 'inventory', { 'inventory.count': () => ({ count: 7 }) });
    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.get('count')).toBe(7);
    expect(reserveOnly).toEqual([]);
  });
});

describe('the held queue', () => {
  function held(requestId: string, deadline: number | null = null): OutgoingRequest {
    return { requestId, uuid: requestId, sagaName: 'manual', step: 'reserve', phase: 'execute', attempt: 1, target: 'inventory.reserve', content: { requestId }, deadline };
  }

  it('drops the oldest past maxHeldRequests, and delivers the rest in order once a participant connects', async () => {
    const { broker, log } = await startBroker({ maxHeldRequests: 3 });
    const responses: SagaResponseData[] = [];
    broker.attach((response) => responses.push(response));
    for (const id of ['h1', 'h2', 'h3', 'h4', 'h5']) broker.send(held(id));
    broker.send(held('h5')); // a re-send of a held request is not held twice
    expect(broker.stats).toMatchObject({ held: 3, droppedHeld: 2, sent: 0 });
    const warned = log.lines.filter((l) => l.message.startsWith('dropped a held request'));
    expect(warned[0]!.fields).toMatchObject({ requestId: 'h1', target: 'inventory.reserve' });

    const got: string[] = [];
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (_content, info) => {
        got.push(info.requestId);
        return { ok: true };
      },
    });
    await until(() => responses.length === 3, 'the three held requests answered');
    expect(got).toEqual(['h3', 'h4', 'h5']);
    expect(broker.stats).toMatchObject({ held: 0, droppedHeld: 2, sent: 3, responses: 3, expiredHeld: 0 });
  });

  it('expires held requests at their deadline: at a heartbeat, or when a participant connects after it', async () => {
    const clock = new ManualClock();
    const start = clock.now();
    const { broker } = await startBroker({ clock, heartbeatMs: 60_000 });
    broker.send(held('soon', start + 1_000));
    broker.send(held('later', start + 100_000));
    broker.send(held('never'));
    expect(broker.stats).toMatchObject({ held: 3, expiredHeld: 0 });

    clock.advance(59_999);
    expect(broker.stats.held).toBe(3); // nothing looks before a beat or a connection
    clock.advance(1); // the beat at 60 s: `soon` is past its deadline
    expect(broker.stats).toMatchObject({ held: 2, expiredHeld: 1 });

    clock.advance(40_000); // `later` is due now, and no beat comes until 120 s
    expect(broker.stats).toMatchObject({ held: 2, expiredHeld: 1 });
    const got: string[] = [];
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (_content, info) => {
        got.push(info.requestId);
        return {};
      },
    });
    await until(() => got.length === 1, 'the one request still in time');
    expect(got).toEqual(['never']);
    expect(broker.stats).toMatchObject({ held: 0, expiredHeld: 2, sent: 1 });
  });
});

describe('requests in flight a participant never answers', () => {
  it('are forgotten a minute after their deadline, at a heartbeat; those without a deadline are kept', async () => {
    const clock = new ManualClock();
    const start = clock.now();
    const { broker } = await startBroker({ clock, heartbeatMs: 60_000 });
    const got: string[] = [];
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (_content, info) => {
        got.push(info.requestId);
        return new Promise(() => undefined);
      },
    });
    const request = (requestId: string, deadline: number | null): OutgoingRequest => ({ requestId, uuid: requestId, sagaName: 'manual', step: 'reserve', phase: 'execute', attempt: 1, target: 'inventory.reserve', content: {}, deadline });
    broker.send(request('timed', start + 1_000));
    broker.send(request('patient', null));
    await until(() => got.length === 2, 'both reached the participant');
    expect(broker.stats.inflight).toBe(2);
    clock.advance(60_000); // the beat at 60 s: `timed` is 59 s past its deadline, still kept
    expect(broker.stats).toMatchObject({ inflight: 2, expiredInflight: 0 });
    await sleep(50); // the participant answers the ping
    clock.advance(60_000); // the beat at 120 s: forgotten
    expect(broker.stats).toMatchObject({ inflight: 1, expiredInflight: 1, connections: 1 });
  });
});

describe('reconnecting and re-sending', () => {
  it('re-sends a request whose connection dropped before the answer arrived; the participant replays its first answer', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const proxy = await tcpProxy(broker.port);
    const effects = new Map<string, number>();
    const seen: string[] = [];
    let handlerReturned = false;
    let inventory: Participant | undefined;
    const log = collectingLogger();
    inventory = await participant(
      proxy.url,
      'inventory',
      {
        'inventory.reserve': async (content, info) => {
          seen.push(info.target);
          effects.set(info.requestId, (effects.get(info.requestId) ?? 0) + 1);
          // The side effect is done; the connection dies before the answer can go out.
          proxy.block();
          proxy.dropAll();
          await until(() => inventory?.connected === false, 'the participant sees its connection closed');
          handlerReturned = true;
          return { id: `r-${(content as { orderId: string }).orderId}` };
        },
      },
      // No jitter (random() = 1 gives the full delay): the backoff is 20, 40, 80, 160 ms…
      { reconnect: { initialDelayMs: 20, maxDelayMs: 1_000 }, random: () => 1, logger: log },
    );
    await participant(broker.url, 'payment', goodHandlers(seen).payment);

    const running = track(manager.run(ORDER, { context: { orderId: 'o-lost' }, uuid: 'exec-lost-answer' }));
    await until(() => handlerReturned, 'the handler has run and returned while disconnected');
    await until(() => broker.stats.resent === 1, 'the broker saw the connection close and took the request back');
    expect(broker.stats).toMatchObject({ held: 1, inflight: 0, responses: 0 });

    // Reconnection attempts are refused for a while: the participant backs off, it does not spin.
    await until(() => proxy.attempts.length >= 4, 'four reconnection attempts while the proxy refuses', 10_000);
    const delays = log.lines.filter((l) => l.message.includes('reconnecting')).map((l) => l.fields!.delayMs as number);
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 160]);
    // Each refused attempt came no sooner than the delay asked for after the one before (a loaded
    // machine only makes the gaps longer); 1 ms for timer rounding.
    const gaps = proxy.attempts.slice(1, 4).map((t, i) => t - proxy.attempts[i]!);
    gaps.forEach((gap, i) => expect(gap, `gap ${i + 1}`).toBeGreaterThanOrEqual(delays[i + 1]! - 1));
    proxy.allow();

    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-lost', reservationId: 'r-o-lost', chargeId: 'c-o-lost' });
    const reserveId = formatRequestId({ uuid: 'exec-lost-answer', step: 'reserve', phase: 'execute', attempt: 1 });
    expect([...effects]).toEqual([[reserveId, 1]]);
    expect(seen).toEqual(['inventory.reserve', 'payment.charge']);
    expect(inventory.stats.handled).toBe(1);
    expect(inventory.stats.duplicates).toBe(1);
    expect(inventory.stats.reconnects).toBeGreaterThanOrEqual(5);
    expect(inventory.connected).toBe(true);
    expect(broker.stats).toMatchObject({ resent: 1, held: 0, inflight: 0, responses: 2 });
  });

  it('re-sends a request whose handler was still running when the connection was killed; the handler runs once', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const proxy = await tcpProxy(broker.port);
    const effects = new Map<string, number>();
    const started = deferred();
    const finish = deferred();
    const inventory = await participant(
      proxy.url,
      'inventory',
      {
        'inventory.reserve': async (_content, info) => {
          effects.set(info.requestId, (effects.get(info.requestId) ?? 0) + 1);
          started.resolve();
          await finish.promise;
          return { id: 'r-slow' };
        },
      },
      { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } },
    );

    const running = track(manager.run(RESERVE, { context: { orderId: 'o-slow' }, uuid: 'exec-slow-handler' }));
    await started.promise;
    proxy.dropAll();
    await until(() => broker.stats.resent === 1, 'the broker took the request back');
    await until(() => inventory.stats.reconnects >= 1 && inventory.connected, 'the participant reconnected');
    await until(() => inventory.stats.duplicates === 1, 'the re-sent request reached the participant');
    finish.resolve();

    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.get('reservationId')).toBe('r-slow');
    expect([...effects.values()]).toEqual([1]);
    expect(inventory.stats.handled).toBe(1);
    expect(broker.stats).toMatchObject({ sent: 2, resent: 1, responses: 1, held: 0, inflight: 0 });
  });
});

describe('duplicate suppression in the participant', () => {
  function manualRequest(uuid: string, content: Record<string, string> = {}): OutgoingRequest {
    return {
      requestId: formatRequestId({ uuid, step: 'reserve', phase: 'execute', attempt: 1 }),
      uuid,
      sagaName: 'manual',
      step: 'reserve',
      phase: 'execute',
      attempt: 1,
      target: 'inventory.reserve',
      content,
      deadline: null,
    };
  }

  it('runs the handler once for a request the broker delivers twice, and answers both with the first answer', async () => {
    const { broker } = await startBroker();
    const responses: SagaResponseData[] = [];
    broker.attach((response) => responses.push(response));
    let runs = 0;
    const inventory = await participant(broker.url, 'inventory', {
      'inventory.reserve': () => ({ id: `r-${++runs}` }),
    });
    const request = manualRequest('dup-1', { sku: 'book' });

    broker.send(request);
    await until(() => responses.length === 1, 'the first answer');
    broker.send(request);
    await until(() => responses.length === 2, 'the answer to the duplicate');

    expect(runs).toBe(1);
    expect(responses[0]).toMatchObject({ requestId: request.requestId, status: 200, content: { id: 'r-1' }, service: 'inventory' });
    expect(responses[1]).toEqual(responses[0]);
    expect(inventory.stats).toMatchObject({ handled: 1, duplicates: 1 });
  });

  it('answers two back-to-back deliveries of one request id with the same answer (raw orchestrator), and does not remember a 500', async () => {
    const wss = new WebSocketServer({ host: HOST, port: 0 });
    servers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const client of wss.clients) client.terminate();
          wss.close(() => resolve());
        }),
    );
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const url = `ws://${HOST}:${(wss.address() as AddressInfo).port}`;
    const received: Frame[] = [];
    const hellos: Frame[] = [];
    let server: WebSocket | undefined;
    wss.on('connection', (ws) => {
      server = ws;
      ws.on('message', (data: RawData) => {
        const frame = JSON.parse(data.toString()) as Frame;
        if (frame.type === 'hello') {
          hellos.push(frame);
          ws.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, service: 'inventory', heartbeatMs: 10_000, maxPayloadBytes: 1 << 20 }));
        } else received.push(frame);
      });
    });

    const calls: ParticipantRequestInfo[] = [];
    const release = deferred();
    const inventory = await participant(url, 'inventory', {
      'inventory.reserve': async (_content, info) => {
        calls.push(info);
        await release.promise;
        return { id: `r-${calls.length}` };
      },
      'inventory.release': (_content, info) => {
        calls.push(info);
        if (calls.filter((c) => c.target === 'inventory.release').length === 1) throw new Error('database down');
        return { released: true };
      },
    });
    expect(hellos).toEqual([{ type: 'hello', protocol: PROTOCOL_VERSION, service: 'inventory', targets: ['inventory.reserve', 'inventory.release'] }]);

    const frame = (target: string, requestId: string) =>
      JSON.stringify({ type: 'request', requestId, uuid: 'raw-1', sagaName: 'manual', step: 'reserve', phase: 'execute', attempt: 1, target, content: {}, deadline: null });
    // The same request twice, before the handler has answered.
    server!.send(frame('inventory.reserve', 'raw-1/execute/1/reserve'));
    server!.send(frame('inventory.reserve', 'raw-1/execute/1/reserve'));
    await until(() => inventory.stats.duplicates === 1, 'the duplicate reached the participant');
    release.resolve();
    await until(() => received.length === 2, 'two answers');
    expect(calls.map((c) => c.target)).toEqual(['inventory.reserve']);
    expect(received[0]).toEqual({ type: 'response', requestId: 'raw-1/execute/1/reserve', status: 200, content: { id: 'r-1' }, relatedServices: [] });
    expect(received[1]).toEqual(received[0]);

    // A 500 is not remembered: the same request id delivered again runs the handler again.
    server!.send(frame('inventory.release', 'raw-1/compensate/1/reserve'));
    await until(() => received.length === 3, 'the 500');
    expect(received[2]).toMatchObject({ requestId: 'raw-1/compensate/1/reserve', status: 500, content: { code: 'SAGA_PARTICIPANT_FAILED' } });
    server!.send(frame('inventory.release', 'raw-1/compensate/1/reserve'));
    await until(() => received.length === 4, 'the answer to the re-send');
    expect(received[3]).toMatchObject({ requestId: 'raw-1/compensate/1/reserve', status: 200, content: { released: true } });
    expect(calls.map((c) => c.target)).toEqual(['inventory.reserve', 'inventory.release', 'inventory.release']);
    expect(inventory.stats).toMatchObject({ handled: 3, duplicates: 1 });
  });
});

describe('bad input: error frames, and the orchestrator carries on', () => {
  it('answers a frame that is not JSON with SAGA_FRAME_NOT_JSON and keeps the connection', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    raw.send('{"type": "hello", oops');
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_FRAME_NOT_JSON' });
    await raw.hello();
    raw.send('not json at all');
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_FRAME_NOT_JSON' });
    expect(raw.open).toBe(true);
    expect(broker.stats.rejectedFrames).toBe(2);
    await carriesOn();
  });

  it('answers frames that fail the schema with SAGA_FRAME_INVALID, naming each wrong field', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    const cases: Array<[frame: unknown, path: string]> = [
      [{ type: 'bogus' }, 'type'],
      [{ protocol: 1 }, 'type'],
      [[], '(root)'],
      [{ type: 'hello', protocol: '1', service: 'shipping', targets: ['shipping'] }, 'protocol'],
      [{ type: 'hello', protocol: 1, service: 'shipping', targets: [] }, 'targets'],
      [{ type: 'hello', protocol: 1, targets: ['shipping'] }, 'service'],
      [{ type: 'hello', protocol: 1, service: 'shipping', targets: ['shipping', ''] }, 'targets.1'],
    ];
    for (const [frame, path] of cases) {
      raw.send(frame);
      const error = await raw.next(`the error for ${JSON.stringify(frame)}`);
      expect(error, JSON.stringify(frame)).toMatchObject({ type: 'error', code: 'SAGA_FRAME_INVALID' });
      expect(error.issues?.map((i) => i.path), JSON.stringify(frame)).toEqual([path]);
    }
    await raw.hello();
    raw.send({ type: 'response', requestId: 'x/execute/1/y', status: 201, content: {} });
    const badStatus = await raw.next();
    expect(badStatus).toMatchObject({ type: 'error', code: 'SAGA_FRAME_INVALID', requestId: 'x/execute/1/y' });
    expect(badStatus.issues?.map((i) => i.path)).toEqual(['status']);
    raw.send({ type: 'response', requestId: 42, status: 200, content: {} });
    const badId = await raw.next();
    expect(badId.issues?.map((i) => i.path)).toEqual(['requestId']);
    expect(badId.requestId).toBeUndefined();
    expect(raw.open).toBe(true);
    await carriesOn();
  });

  it('answers a binary frame with SAGA_FRAME_INVALID and keeps the connection', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    await raw.hello();
    raw.ws.send(Buffer.from(JSON.stringify({ type: 'response', requestId: 'a/execute/1/b', status: 200, content: {} })), { binary: true });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_FRAME_INVALID' });
    expect(raw.open).toBe(true);
    await carriesOn();
  });

  it('answers a response before hello with SAGA_HELLO_REQUIRED', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    raw.send({ type: 'response', requestId: 'a/execute/1/b', status: 200, content: {} });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_HELLO_REQUIRED' });
    await raw.hello();
    expect(broker.stats.responses).toBe(0);
    await carriesOn();
  });

  it('answers a response to no request in flight with SAGA_RESPONSE_UNEXPECTED', async () => {
    const { broker, carriesOn } = await orchestra();
    await carriesOn();
    const raw = await RawClient.open(broker.url, 'shipping');
    await raw.hello();
    const requestId = formatRequestId({ uuid: 'nobody', step: 'ship', phase: 'execute', attempt: 1 });
    raw.send({ type: 'response', requestId, status: 200, content: {} });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_RESPONSE_UNEXPECTED', requestId });
    expect(raw.open).toBe(true);
    expect(broker.stats.responses).toBe(2);
    await carriesOn();
  });

  it.each([
    ['a wrong token', { authorization: 'Bearer nope', 'x-sagachart-service': 'inventory' }],
    ['another service’s token', { authorization: `Bearer ${TOKENS.payment}`, 'x-sagachart-service': 'inventory' }],
    ['an unknown service', { authorization: 'Bearer tok-inventory', 'x-sagachart-service': 'billing' }],
    ['a service named like an Object property', { authorization: 'Bearer x', 'x-sagachart-service': 'constructor' }],
    ['no authorization header', { 'x-sagachart-service': 'inventory' }],
    ['no service header', { authorization: `Bearer ${TOKENS.inventory}` }],
    ['no headers', {}],
    ['another auth scheme', { authorization: `Basic ${TOKENS.inventory}`, 'x-sagachart-service': 'inventory' }],
  ])('refuses the upgrade with HTTP 401 for %s', async (_name, headers: Record<string, string>) => {
    const { broker, carriesOn } = await orchestra();
    const refused = await refusedUpgrade(broker.url, headers);
    expect(refused.status).toBe(401);
    expect(refused.body.length).toBeGreaterThan(0);
    expect(broker.stats.connections).toBe(2);
    await carriesOn();
  });

  it('closes with 1002 a hello with another protocol version', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    raw.send({ type: 'hello', protocol: PROTOCOL_VERSION + 1, service: 'shipping', targets: ['shipping'] });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_PROTOCOL_VERSION' });
    expect((await raw.closed).code).toBe(CloseCode.ProtocolError);
    await carriesOn();
  });

  it('closes with 1008 a hello that names another service than the one authenticated', async () => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, service: 'inventory', targets: ['inventory'] });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_WRONG_SERVICE' });
    expect((await raw.closed).code).toBe(1008);
    expect(broker.connectedServices().sort()).toEqual(['inventory', 'payment']);
    await carriesOn();
  });

  it.each([
    [['shipping.book', 'payment.charge']],
    [['inventory']],
    [['shippingx.book']],
  ])('closes with 1008 a hello declaring targets outside its service: %j', async (targets: string[]) => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, service: 'shipping', targets });
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_FOREIGN_TARGET' });
    expect((await raw.closed).code).toBe(1008);
    expect(broker.connectedServices()).not.toContain('shipping');
    await carriesOn();
  });

  it('closes with 1008 a connection that does not say hello in time', async () => {
    const clock = new ManualClock();
    const { broker, carriesOn } = await orchestra({ helloTimeoutMs: 150, clock });
    const raw = await RawClient.open(broker.url, 'shipping');
    clock.advance(149);
    await raw.roundTrip();
    expect(raw.open).toBe(true);
    expect(raw.frames).toEqual([]);
    clock.advance(1);
    expect(await raw.next()).toMatchObject({ type: 'error', code: 'SAGA_HELLO_TIMEOUT' });
    expect((await raw.closed).code).toBe(1008);
    await carriesOn();
  });

  it('closes with 1009 a connection that sends a frame over maxPayloadBytes', async () => {
    const { broker, carriesOn } = await orchestra({ maxPayloadBytes: 4_096 });
    const raw = await RawClient.open(broker.url, 'shipping');
    await raw.hello();
    raw.send({ type: 'response', requestId: 'a/execute/1/b', status: 200, content: 'x'.repeat(5_000) });
    expect((await raw.closed).code).toBe(1009);
    expect(broker.connectedServices().sort()).toEqual(['inventory', 'payment']);
    await carriesOn();
  });

  it('closes with 1013 a connection that stops reading, and re-sends what it had to a reader', async () => {
    // Beats on a fake clock (of a minute, so that the participants' watchdogs never fire): the
    // test moves it once the big request is queued, however long building it took.
    const clock = new ManualClock();
    const { broker, log, manager, carriesOn } = await orchestra({ heartbeatMs: 60_000, maxBufferedBytes: 1_024, clock });
    // One frame bigger than what the kernel buffers on loopback for a peer that does not read: a
    // write counts as queued until all of it is written, so it stays over the limit.
    const BIG = 8 * 1024 * 1024;
    const big = new Saga<Order>('ws-big', { twoPhaseCommit: false })
      .remoteStep('store')
      .onExecute(() => new SagaRequest('warehouse.store', { blob: 'x'.repeat(BIG) }))
      .onSuccess(async (ctx, res) => {
        ctx.stored = (await res.content<{ bytes: number }>()).bytes;
      })
      .commit();
    const raw = await RawClient.open(broker.url, 'warehouse');
    await raw.hello();
    const socket = (raw.ws as unknown as { _socket: net.Socket })._socket;
    socket.pause();
    const running = track(manager.run(big, { context: { orderId: 'big' } }));
    await until(() => broker.stats.sent === 1 && broker.stats.bufferedBytes > 1_024, 'the big request is queued in the broker', 20_000);
    // Not routed to it any more while it is over the limit; at the next beat it is closed.
    expect(log.lines.some((l) => l.message.includes('does not read'))).toBe(false);
    clock.advance(60_000);
    expect(log.lines.some((l) => l.message.includes('does not read'))).toBe(true);
    // Read again: the close frame the broker queued after the data says why.
    socket.resume();
    expect((await raw.closed).code).toBe(CloseCode.TryAgainLater);
    await until(() => broker.stats.resent === 1 && broker.stats.held === 1, 'the big request is held again');

    const sizes: number[] = [];
    await participant(broker.url, 'warehouse', {
      'warehouse.store': (content) => {
        sizes.push((content as { blob: string }).blob.length);
        return { bytes: (content as { blob: string }).blob.length };
      },
    });
    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.get('stored')).toBe(BIG);
    expect(sizes).toEqual([BIG]);
    await carriesOn();
  });

  it('survives a client that resets its connection during a refused upgrade', async () => {
    const { broker, carriesOn } = await orchestra();
    const uncaught = await uncaughtDuring(async () => {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(broker.port, HOST, () => {
            socket.write(
              'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
                'Authorization: Bearer wrong\r\nX-Sagachart-Service: inventory\r\n\r\n',
            );
            socket.resetAndDestroy();
            resolve();
          });
          socket.on('error', reject);
        });
      }
      await sleep(100);
    });
    expect(uncaught).toEqual([]);
    await carriesOn();
  });

  it.each([
    ['a wrong service', { service: 'é'.repeat(100), targets: ['shipping'] }, 'SAGA_WRONG_SERVICE'],
    ['a foreign target', { service: 'shipping', targets: ['日本'.repeat(50)] }, 'SAGA_FOREIGN_TARGET'],
  ])('closes with 1008, without crashing, a hello naming %s in long non-ASCII text', async (_name, hello, code) => {
    const { broker, carriesOn } = await orchestra();
    const raw = await RawClient.open(broker.url, 'shipping');
    const uncaught = await uncaughtDuring(async () => {
      raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, ...hello });
      expect(await raw.next()).toMatchObject({ type: 'error', code });
      await Promise.race([raw.closed, sleep(500)]);
    });
    expect(uncaught).toEqual([]);
    expect(raw.open).toBe(false);
    expect((await raw.closed).code).toBe(1008);
    await carriesOn();
  });
});

/**
 * Runs `fn` and returns the messages of the exceptions nobody caught meanwhile: in a real
 * orchestrator process, each of them would have crashed it.
 */
async function uncaughtDuring(fn: () => Promise<void>): Promise<string[]> {
  const uncaught: string[] = [];
  const onUncaught = (err: Error) => uncaught.push(err.message);
  process.on('uncaughtException', onUncaught);
  try {
    await fn();
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  return uncaught;
}

describe('responses from the wrong service', () => {
  it('ignores a response to an inventory request sent by the payment service; the saga finishes when inventory answers', async () => {
    const { broker } = await startBroker();
    const manager = startManager({ broker });
    const calls: ParticipantRequestInfo[] = [];
    const answer = deferred<{ id: string }>();
    await participant(broker.url, 'inventory', {
      'inventory.reserve': (_content, info) => {
        calls.push(info);
        return answer.promise;
      },
    });
    const payment = await RawClient.open(broker.url, 'payment');
    await payment.hello(['payment.charge']);

    const running = track(manager.run(RESERVE, { context: { orderId: 'o-forged' }, uuid: 'exec-forged' }));
    await until(() => calls.length === 1, 'inventory got the request');
    const requestId = calls[0]!.requestId;
    expect(requestId).toBe(formatRequestId({ uuid: 'exec-forged', step: 'reserve', phase: 'execute', attempt: 1 }));

    for (const status of [200, 400, 500]) {
      payment.send({ type: 'response', requestId, status, content: { id: 'forged' } });
      expect(await payment.next()).toMatchObject({ type: 'error', code: 'SAGA_RESPONSE_WRONG_SERVICE', requestId });
    }
    await settle();
    const waiting = await manager.get('exec-forged');
    expect(waiting.status).toBe(SagaStatus.Paused);
    expect(rows(waiting)).toEqual([['reserve', SagaStepStatus.PausedByOnExecute, false]]);
    expect(waiting.context.toJSON()).toEqual({ orderId: 'o-forged' });
    expect(broker.stats).toMatchObject({ responses: 0, inflight: 1, rejectedFrames: 3 });
    expect(payment.open).toBe(true);

    answer.resolve({ id: 'r-real' });
    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-forged', reservationId: 'r-real' });
    expect(stepOf(execution, 'reserve').attempts).toBe(1);
  });
});

describe('heartbeats', () => {
  // Beats run on the broker's clock: the test moves it one heartbeat at a time, and between beats
  // waits until every live peer's pong has reached the broker (a round trip after its ping).
  // Heartbeats of a minute on the wall: the participants' own watchdogs (2.5 beats) never fire.
  const HEARTBEAT = 60_000;

  it('closes a peer at the first beat after one it did not answer, and keeps live ones', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ heartbeatMs: HEARTBEAT, clock });
    const dead = await RawClient.open(broker.url, 'shipping', { autoPong: false });
    const live = await RawClient.open(broker.url, 'warehouse');
    await dead.hello();
    await live.hello();
    expect(broker.connectedServices().sort()).toEqual(['shipping', 'warehouse']);
    const pinged = { dead: 0, live: 0 };
    dead.ws.on('ping', () => pinged.dead++);
    live.ws.on('ping', () => pinged.live++);

    // Beat 1: both are pinged; neither has missed anything yet.
    clock.advance(HEARTBEAT);
    await until(() => pinged.dead === 1 && pinged.live === 1, 'both pinged');
    await live.roundTrip();
    await dead.roundTrip();
    expect(dead.open).toBe(true);

    // Beat 2: the dead peer did not answer beat 1: cut, without a closing handshake.
    clock.advance(HEARTBEAT);
    const closed = await dead.closed;
    expect(closed.code).toBe(1006);
    await until(() => !broker.connectedServices().includes('shipping'), 'the broker dropped the dead peer');

    // Live through more beats.
    for (let beat = 3; beat <= 5; beat++) {
      await until(() => pinged.live === beat - 1, `ping ${beat - 1} reached the live peer`);
      await live.roundTrip();
      clock.advance(HEARTBEAT);
    }
    await until(() => pinged.live === 5, 'the last ping');
    expect(live.open).toBe(true);
    expect(broker.connectedServices()).toEqual(['warehouse']);
    expect(pinged.dead).toBe(1);

    // The broker carries on.
    const manager = startManager({ broker });
    await participant(broker.url, 'inventory', goodHandlers([]).inventory);
    const execution = await manager.run(RESERVE, { context: { orderId: 'after-beats' } });
    expect(execution.context.get('reservationId')).toBe('r-after-beats');
  });

  it('judges no one at a beat that comes in the same turn as the one before (pongs cannot have been read)', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ heartbeatMs: HEARTBEAT, clock });
    const quiet = await RawClient.open(broker.url, 'shipping', { autoPong: false });
    await quiet.hello();
    // Two beats at once: the second is not a judgement on the first's ping.
    clock.advance(2 * HEARTBEAT);
    await quiet.roundTrip();
    expect(quiet.open).toBe(true);
    expect(broker.connectedServices()).toEqual(['shipping']);
    // A beat a turn later is.
    clock.advance(HEARTBEAT);
    expect((await quiet.closed).code).toBe(1006);
  });
});

describe('timeouts and retries on fake time, over the wire', () => {
  it('retries an attempt the participant never answered with a new request id, and finishes on the answer to attempt 2', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ clock });
    const manager = startManager({ broker, clock });
    const calls: ParticipantRequestInfo[] = [];
    await participant(broker.url, 'carrier', {
      'carrier.book': (_content, info) => {
        calls.push(info);
        return info.attempt === 1 ? never() : { bookingId: `bk-${info.attempt}` };
      },
    });
    const saga = new Saga<Order>('ws-book-timeout', { twoPhaseCommit: false })
      .remoteStep('book')
      .onExecute(() => new SagaRequest('carrier.book', {}))
      .onSuccess(async (ctx, res) => {
        ctx.bookingId = (await res.content<{ bookingId: string }>()).bookingId;
      })
      .timeout(1_000)
      .retry({ attempts: 2 })
      .commit();

    const running = track(manager.run(saga, { context: { orderId: 'o-t1' }, uuid: 'exec-ws-timeout' }));
    await until(() => calls.length === 1, 'attempt 1 reached the participant');
    clock.advance(999);
    await settle();
    await sleep(50);
    expect(calls).toHaveLength(1);

    clock.advance(1);
    await until(() => calls.length === 2, 'attempt 2 reached the participant');
    const execution = await running;

    expect(calls.map((c) => [c.attempt, c.phase, c.step, c.target])).toEqual([
      [1, 'execute', 'book', 'carrier.book'],
      [2, 'execute', 'book', 'carrier.book'],
    ]);
    expect(calls.map((c) => c.requestId)).toEqual([
      formatRequestId({ uuid: 'exec-ws-timeout', step: 'book', phase: 'execute', attempt: 1 }),
      formatRequestId({ uuid: 'exec-ws-timeout', step: 'book', phase: 'execute', attempt: 2 }),
    ]);
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([['book', SagaStepStatus.Finished, false]]);
    const book = stepOf(execution, 'book');
    expect(book.attempts).toBe(2);
    expect(book.finishedAt! - book.startedAt!).toBe(1_000);
    expect(execution.context.toJSON()).toEqual({ orderId: 'o-t1', bookingId: 'bk-2' });
    // Attempt 1 is still unanswered at the broker; nothing was re-sent.
    expect(broker.stats).toMatchObject({ sent: 2, responses: 1, resent: 0 });
  });

  it('fails the step with SAGA_STEP_TIMEOUT when no attempt is answered, and compensates the step before it over the wire', async () => {
    const clock = new ManualClock();
    const { broker } = await startBroker({ clock });
    const manager = startManager({ broker, clock });
    const seen: Array<[target: string, phase: string, attempt: number]> = [];
    await participant(broker.url, 'inventory', {
      inventory: (_content, info) => {
        seen.push([info.target, info.phase, info.attempt]);
        return info.target === 'inventory.reserve' ? { id: 'r-t2' } : { released: true };
      },
    });
    await participant(broker.url, 'carrier', {
      'carrier.book': (_content, info) => {
        seen.push([info.target, info.phase, info.attempt]);
        return never();
      },
      'carrier.cancel': (_content, info) => {
        seen.push([info.target, info.phase, info.attempt]);
        return {};
      },
    });
    const saga = new Saga<Order>('ws-book-times-out', { twoPhaseCommit: false })
      .remoteStep('reserve')
      .onExecute((ctx) => new SagaRequest('inventory.reserve', { orderId: ctx.orderId }))
      .onSuccess(async (ctx, res) => {
        ctx.reservationId = (await res.content<{ id: string }>()).id;
      })
      .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId ?? null }))
      .remoteStep('book')
      .onExecute(() => new SagaRequest('carrier.book', {}))
      .onFailure(() => new SagaRequest('carrier.cancel', {}))
      .timeout(1_000)
      .retry({ attempts: 2 })
      .commit();

    const running = track(manager.run(saga, { context: { orderId: 'o-t2' }, raiseOnError: false, uuid: 'exec-ws-exhausted' }));
    await until(() => seen.length === 2, 'reserve answered and book attempt 1 sent');
    clock.advance(1_000);
    await until(() => seen.length === 3, 'book attempt 2 sent');
    clock.advance(999);
    await settle();
    await sleep(50);
    expect(seen).toHaveLength(3);
    clock.advance(1);
    const execution = await running;

    expect(execution.status).toBe(SagaStatus.Errored);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, true],
      ['book', SagaStepStatus.ErroredByOnExecute, false],
    ]);
    const book = stepOf(execution, 'book');
    expect(book.attempts).toBe(2);
    expect(book.error?.code).toBe('SAGA_STEP_TIMEOUT');
    expect(book.compensation).toBeNull();
    expect(execution.error).toMatchObject({ step: 'book', code: 'SAGA_STEP_TIMEOUT' });
    expect(seen).toEqual([
      ['inventory.reserve', 'execute', 1],
      ['carrier.book', 'execute', 1],
      ['carrier.book', 'execute', 2],
      ['inventory.release', 'compensate', 1],
    ]);
  });
});

describe('refused participants', () => {
  it('rejects connectParticipant with SAGA_PARTICIPANT_REFUSED for a wrong token, and does not keep reconnecting', async () => {
    const upgrades: Array<[service: string, token: string]> = [];
    const { broker } = await startBroker({
      auth: (service, token) => {
        upgrades.push([service, token]);
        return TOKENS[service as Service] === token;
      },
    });

    const attempt = connectParticipant({
      url: broker.url,
      service: 'inventory',
      token: 'wrong',
      handlers: { inventory: () => ({}) },
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      logger: collectingLogger(),
    });
    await expect(attempt).rejects.toBeInstanceOf(SagaParticipantRefusedError);
    await expect(attempt).rejects.toMatchObject({ code: 'SAGA_PARTICIPANT_REFUSED', service: 'inventory' });
    await expect(attempt).rejects.toThrow(/401/);
    await sleep(300);
    expect(upgrades).toEqual([['inventory', 'wrong']]);
    expect(broker.stats.connections).toBe(0);

    // The right token still gets in.
    const good = await participant(broker.url, 'inventory', { inventory: () => ({}) });
    expect(good.connected).toBe(true);
    expect(upgrades).toHaveLength(2);
  });

  it('rejects connectParticipant with SAGA_PARTICIPANT_REFUSED for targets outside its service, and does not keep reconnecting', async () => {
    let upgrades = 0;
    const { broker } = await startBroker({
      auth: (service, token) => {
        upgrades++;
        return TOKENS[service as Service] === token;
      },
    });
    const attempt = connectParticipant({
      url: broker.url,
      service: 'inventory',
      token: TOKENS.inventory,
      handlers: { 'inventory.reserve': () => ({}), 'payment.charge': () => ({}) },
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      logger: collectingLogger(),
    });
    await expect(attempt).rejects.toMatchObject({ code: 'SAGA_PARTICIPANT_REFUSED', service: 'inventory' });
    await sleep(300);
    expect(upgrades).toBe(1);
    expect(broker.stats.connections).toBe(0);
  });
});
