/**
 * The WebSocket transport over TLS, and attached to a server of the application's: a broker that
 * serves `wss` with a certificate the test makes itself (openssl), participants that trust it (or
 * not), a saga end to end over `wss`, a broker attached to an existing http or https server at a
 * path (beside the server's own requests and another WebSocket endpoint), and the option checks
 * that name the field.
 */
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  connectParticipant,
  Saga,
  SagaManager,
  SagaParticipantRefusedError,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  WebSocketBroker,
  type Participant,
  type ParticipantOptions,
  type WebSocketBrokerOptions,
} from '../../src/index.js';
import { collectingLogger, rows, sleep, until } from '../support/harness.js';
import { orderSaga, type Order } from '../support/ws-order.js';
import { selfSignedCertificate, type SelfSignedCertificate } from '../support/tls.js';

const TOKENS = { inventory: 'tok-inventory', payment: 'tok-payment' } as const;

let trusted: SelfSignedCertificate;
let stranger: SelfSignedCertificate;
beforeAll(() => {
  trusted = selfSignedCertificate();
  stranger = selfSignedCertificate();
});

const closers: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function startBroker(options: Partial<WebSocketBrokerOptions>) {
  const log = collectingLogger();
  const broker = await WebSocketBroker.listen({ auth: TOKENS, logger: log, ...options });
  closers.push(() => broker.close());
  return { broker, log };
}

async function participant(options: Partial<ParticipantOptions> & Pick<ParticipantOptions, 'url'>): Promise<Participant> {
  const p = await connectParticipant({
    service: 'inventory',
    token: TOKENS.inventory,
    logger: collectingLogger(),
    handlers: {
      'inventory.reserve': (content) => ({ id: `r-${(content as { orderId: string }).orderId}` }),
      'inventory.release': () => ({ released: true }),
    },
    ...options,
  });
  closers.push(() => p.close());
  return p;
}

async function listening<S extends http.Server | https.Server>(server: S): Promise<S> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return server;
}

function get(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https') ? https : http).get(url, { ...(ca ? { ca } : {}), agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}


const ORDER = orderSaga('tls-order', { twoPhaseCommit: false });

/** Runs two orders through `broker` with inventory and payment participants at `url`. */
async function runOrders(broker: WebSocketBroker, url: string, tls?: ParticipantOptions['tls']) {
  const manager = new SagaManager({ broker, logger: collectingLogger() });
  closers.push(() => manager.close());
  const inventory = await participant({ url, ...(tls ? { tls } : {}) });
  await participant({
    url,
    ...(tls ? { tls } : {}),
    service: 'payment',
    token: TOKENS.payment,
    handlers: { 'payment.charge': (content) => ({ id: `c-${(content as { orderId: string }).orderId}` }) },
  });
  const executions = await Promise.all(['t-1', 't-2'].map((orderId) => manager.run(ORDER, { context: { orderId } })));
  for (const [i, execution] of executions.entries()) {
    const orderId = `t-${i + 1}`;
    expect(execution.status).toBe(SagaStatus.Finished);
    expect(rows(execution)).toEqual([
      ['reserve', SagaStepStatus.Finished, false],
      ['charge', SagaStepStatus.Finished, false],
    ]);
    expect(execution.context.toJSON()).toEqual({ orderId, reservationId: `r-${orderId}`, chargeId: `c-${orderId}` });
  }
  expect(inventory.stats.handled).toBe(2);
  expect(broker.stats).toMatchObject({ sent: 4, responses: 4, rejectedFrames: 0 });
}

describe('wss: the broker serves TLS itself', () => {
  it('runs sagas end to end over wss with participants that trust its certificate', async () => {
    const { broker } = await startBroker({ port: 0, host: '127.0.0.1', tls: { key: trusted.key, cert: trusted.cert } });
    expect(broker.url).toBe(`wss://127.0.0.1:${broker.port}`);
    // Plain HTTP requests get the same 426 over https.
    expect(await get(`https://127.0.0.1:${broker.port}/`, trusted.cert)).toMatchObject({ status: 426 });
    await runOrders(broker, broker.url, { ca: trusted.cert });
    // The same certificate by the name in it.
    const byName = await participant({ url: `wss://localhost:${broker.port}`, tls: { ca: trusted.cert } });
    expect(byName.connected).toBe(true);
  });

  it.each([
    ['trusts no private CA (Node’s default CAs)', undefined],
    ['trusts another certificate', () => ({ ca: stranger.cert })],
  ])('refuses, once and for good, a participant that %s', async (_name, tls) => {
    // Attached to a server of the test's, to count every connection attempt.
    const server = await listening(https.createServer({ key: trusted.key, cert: trusted.cert }));
    let connections = 0;
    server.on('connection', () => connections++);
    const tlsErrors: string[] = [];
    server.on('tlsClientError', (err) => tlsErrors.push(err.message));
    let upgrades = 0;
    const { broker } = await startBroker({
      server,
      auth: (service, token) => {
        upgrades++;
        return TOKENS[service as keyof typeof TOKENS] === token;
      },
    });
    const attempt = connectParticipant({
      url: broker.url,
      service: 'inventory',
      token: TOKENS.inventory,
      handlers: { inventory: () => ({}) },
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      logger: collectingLogger(),
      ...(tls ? { tls: tls() } : {}),
    });
    await expect(attempt).rejects.toBeInstanceOf(SagaParticipantRefusedError);
    await expect(attempt).rejects.toMatchObject({ code: 'SAGA_PARTICIPANT_REFUSED', service: 'inventory' });
    await expect(attempt).rejects.toThrow(/certificate is not trusted \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/);
    await sleep(100); // with reconnects every 5-10 ms, a retry would show here
    expect(connections).toBe(1);
    expect(upgrades).toBe(0); // the token never left the participant
    expect(broker.stats.connections).toBe(0);
    // One that trusts it gets in.
    const good = await participant({ url: broker.url, tls: { ca: trusted.cert } });
    expect(good.connected).toBe(true);
    expect(upgrades).toBe(1);
  });

  it('keeps trying, and says why, when the certificate is untrusted on a reconnection (it was trusted before)', async () => {
    const { broker } = await startBroker({ port: 0, tls: { key: trusted.key, cert: trusted.cert } });
    // Another TLS server, with a certificate the participant does not trust.
    const impostor = await listening(https.createServer({ key: stranger.key, cert: stranger.cert }));
    const proxy = await tcpProxy(broker.port);
    const log = collectingLogger();
    const p = await connectParticipant({
      url: `wss://127.0.0.1:${proxy.port}`,
      service: 'inventory',
      token: TOKENS.inventory,
      handlers: { inventory: () => ({}) },
      tls: { ca: trusted.cert },
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
      logger: log,
    });
    closers.push(() => p.close());
    expect(p.connected).toBe(true);

    proxy.target = (impostor.address() as AddressInfo).port;
    proxy.dropAll();
    await until(() => log.lines.filter((l) => l.level === 'error' && /certificate is not trusted/.test(l.message)).length >= 2, 'two refused reconnections, logged');
    expect(p.connected).toBe(false);

    proxy.target = broker.port;
    await p.whenConnected();
    expect(p.connected).toBe(true);
    expect(broker.connectedServices()).toEqual(['inventory']);
  });
});

/** A TCP proxy whose upstream port can change; `dropAll()` cuts what goes through it. */
async function tcpProxy(initialTarget: number) {
  const sockets = new Set<net.Socket>();
  const state = { target: initialTarget };
  const server = net.createServer((client) => {
    const upstream = net.connect(state.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      sockets.add(s);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(s);
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  closers.push(() => {
    dropAll();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    get target() {
      return state.target;
    },
    set target(port: number) {
      state.target = port;
    },
    dropAll,
  };
}

describe('attached to an existing server', () => {
  it('serves participants at its path on an http server, leaves the server its own requests, and detaches on close', async () => {
    const server = await listening(
      http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`app: ${req.url}`);
      }),
    );
    const { broker } = await startBroker({ server, path: '/sagachart' });
    const port = (server.address() as AddressInfo).port;
    expect(broker.url).toBe(`ws://127.0.0.1:${port}/sagachart`);
    expect(broker.port).toBe(port);
    expect(await get(`http://127.0.0.1:${port}/health`)).toEqual({ status: 200, body: 'app: /health' });
    // An upgrade elsewhere: the broker is the only upgrade listener, so it answers 404.
    const elsewhere = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/other`, { headers: { authorization: `Bearer ${TOKENS.inventory}`, 'x-sagachart-service': 'inventory' } });
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    });
    expect(elsewhere).toBe(404);

    await runOrders(broker, broker.url);
    await broker.close();
    expect(server.listening).toBe(true);
    expect(server.listenerCount('upgrade')).toBe(0);
    expect(await get(`http://127.0.0.1:${port}/health`)).toEqual({ status: 200, body: 'app: /health' });
  });

  it('shares an https server with another WebSocket endpoint at another path, over wss', async () => {
    const server = await listening(https.createServer({ key: trusted.key, cert: trusted.cert }, (_req, res) => res.end('app')));
    const echo = new WebSocketServer({ noServer: true });
    closers.push(() => new Promise<void>((resolve) => echo.close(() => resolve())));
    server.on('upgrade', (req, socket, head) => {
      if (req.url === '/echo') echo.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data) => ws.send(`echo ${data.toString()}`)));
    });
    const { broker } = await startBroker({ server, path: '/sagachart' });
    const port = (server.address() as AddressInfo).port;
    expect(broker.url).toBe(`wss://127.0.0.1:${port}/sagachart`);

    await runOrders(broker, broker.url, { ca: trusted.cert });
    const echo1 = new WebSocket(`wss://127.0.0.1:${port}/echo`, { ca: trusted.cert });
    closers.push(() => echo1.terminate());
    const answers: string[] = [];
    echo1.on('message', (data) => answers.push(data.toString()));
    await new Promise((resolve, reject) => echo1.on('open', resolve).on('error', reject));
    echo1.send('hi');
    await until(() => answers.length === 1, 'the echo');
    expect(answers).toEqual(['echo hi']);

    // Closing the broker leaves the other endpoint and its connections alone.
    await broker.close();
    echo1.send('still there?');
    await until(() => answers.length === 2, 'the second echo');
    expect(answers[1]).toBe('echo still there?');
    expect(echo1.readyState).toBe(WebSocket.OPEN);
  });
});

describe('options', () => {
  it.each([
    ['server with port', () => ({ server: http.createServer(), port: 7400 }), /option "port" cannot be combined with "server"/],
    ['server with host', () => ({ server: http.createServer(), host: '0.0.0.0' }), /option "host" cannot be combined with "server"/],
    ['server with tls', () => ({ server: http.createServer(), tls: { key: trusted.key, cert: trusted.cert } }), /option "tls" cannot be combined with "server"/],
    ['a server that is not one', () => ({ server: {} as http.Server }), /option "server" must be a node:http or node:https Server/],
    ['tls without a cert', () => ({ tls: { key: trusted.key } }), /option "tls" needs `key` and `cert`/],
    ['tls with a key that is not PEM', () => ({ tls: { key: 'not a key', cert: trusted.cert } }), /option "tls" could not be used/],
    ['a path without its slash', () => ({ path: 'sagachart' }), /option "path" must be a path that starts with "\/"/],
    ['an unknown option', () => ({ tlsOptions: {} }) as Partial<WebSocketBrokerOptions>, /unknown option "tlsOptions"/],
    ['an empty token', () => ({ auth: { inventory: '' } }), /option "auth.inventory" must be a non-empty token string/],
  ])('WebSocketBroker.listen refuses %s, naming the field', async (_name, options, message) => {
    await expect(WebSocketBroker.listen({ auth: TOKENS, logger: collectingLogger(), ...options() })).rejects.toThrow(message);
  });

  it.each([
    ['tls with a ws:// URL', { url: 'ws://127.0.0.1:1', tls: { ca: 'x' } }, /option "tls" applies to a wss:\/\/ URL only/],
    ['an http:// URL', { url: 'http://127.0.0.1:1' }, /option "url" must be a ws:\/\/ or wss:\/\/ URL/],
    ['an empty token', { url: 'ws://127.0.0.1:1', token: '' }, /option "token"/],
    ['a backoff that starts over its maximum', { url: 'ws://127.0.0.1:1', reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, /option "reconnect.initialDelayMs" must not be over reconnect.maxDelayMs/],
  ])('connectParticipant refuses %s, naming the field', async (_name, options, message) => {
    const attempt = connectParticipant({ service: 'inventory', token: TOKENS.inventory, handlers: { inventory: () => ({}) }, logger: collectingLogger(), ...options });
    await expect(attempt).rejects.toBeInstanceOf(TypeError);
    await expect(attempt).rejects.toThrow(message);
  });
});
