// Restate on the workload. Four processes: restate-server (the binary shipped in the npm package
// @restatedev/restate-server, on a temp base dir, every port on 127.0.0.1), the SDK endpoint
// (restate-endpoint.ts: a Restate service whose handler runs the saga's steps each in `ctx.run`
// around a WebSocket request to the participant, through a MiniBroker), the benchmark
// participant, and this driver, which registers the endpoint with the admin API and invokes the
// handler through the ingress over HTTP/1.1 (keep-alive), with an idempotency key per saga.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { freePort } from '../lib/free-port.js';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { measured, startScript, stop } from '../lib/processes.js';
import { contenderArgs, drive, initialState, reportPids, reportResult, type Outcome } from '../lib/workload.js';

const args = contenderArgs();
const HOST = '127.0.0.1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything this script started, so that even a crash or a signal leaves nothing behind. */
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sagachart-bench-restate-'));
const running = () => children.filter((child) => child.exitCode === null && child.signalCode === null);
function cleanupNow(): void {
  for (const child of running()) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.once('exit', cleanupNow);
// Interrupted (e.g. by `timeout`): kill the children and wait for them, so none is left over.
const interrupted = (code: number) => () => {
  const waits = running().map((child) => new Promise((r) => child.once('exit', r)));
  for (const child of running()) child.kill('SIGKILL');
  void Promise.race([Promise.all(waits), sleep(2_000)]).then(() => process.exit(code));
};
process.once('SIGINT', interrupted(130));
process.once('SIGTERM', interrupted(143));

// 1. restate-server, from the platform package @restatedev/restate-server resolves to.
const binary = createRequire(import.meta.url).resolve(`@restatedev/restate-server-${platform()}-${arch()}/bin/restate-server`);
const [fabricPort, adminPort, ingressPort, endpointPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const config = join(dir, 'restate.toml');
writeFileSync(
  config,
  [
    'listen-mode = "tcp"',
    `bind-ip = "${HOST}"`,
    `bind-port = ${fabricPort}`,
    `advertised-host = "${HOST}"`,
    'node-name = "bench"',
    'disable-telemetry = true',
    'log-filter = "warn"',
    'log-disable-ansi-codes = true',
    '[admin]',
    `bind-port = ${adminPort}`,
    'disable-web-ui = true',
    '[ingress]',
    `bind-port = ${ingressPort}`,
    '',
  ].join('\n'),
);
const logFile = join(dir, 'restate-server.log');
const logFd = openSync(logFile, 'w');
const server = spawn(binary, ['--config-file', config, '--base-dir', join(dir, 'data'), '--no-logo'], {
  stdio: ['ignore', logFd, logFd],
  env: { ...process.env, DO_NOT_TRACK: '1' },
});
closeSync(logFd);
children.push(server);
const serverLog = () => readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');

const admin = `http://${HOST}:${adminPort}`;
const ingress = `http://${HOST}:${ingressPort}`;
async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) throw new Error(`restate-server exited (${server.exitCode ?? server.signalCode}) while waiting for ${what}:\n${serverLog()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${serverLog()}`);
    await sleep(50);
  }
}
await until('the admin API', async () => (await fetch(`${admin}/health`)).ok);
await until('the ingress', async () => (await fetch(`${ingress}/restate/health`)).ok);

// 2. The SDK endpoint, which says on which URL its MiniBroker waits for the participant.
async function startEndpoint(): Promise<{ child: ChildProcess; brokerUrl: string }> {
  const path = fileURLToPath(new URL('./restate-endpoint.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, String(endpointPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RESTATE_LOGGING: 'WARN' },
  });
  children.push(child);
  const brokerUrl = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('READY ')) resolve(line.slice('READY '.length).trim());
    });
    child.once('exit', (code) => reject(new Error(`restate-endpoint.ts exited with ${code} before it was ready`)));
  });
  return { child, brokerUrl };
}
const endpoint = await startEndpoint();

// 3. The participant, connected to the endpoint's MiniBroker.
const participant = await startScript('lib/participant.ts', [endpoint.brokerUrl, 'restate-token']);
children.push(participant);

// 4. Register the endpoint, then wait until the ingress runs a saga end to end.
const registered = await fetch(`${admin}/deployments`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ uri: `http://${HOST}:${endpointPort}` }),
});
if (!registered.ok) throw new Error(`registering the endpoint: ${registered.status} ${await registered.text()}`);

const agent = new Agent({ keepAlive: true, maxSockets: args.concurrency });
const runId = randomBytes(4).toString('hex');

/** Invokes BenchSaga/run for saga `i` through the ingress, with an idempotency key of its own. */
function invoke(i: number | string, fail: boolean): Promise<Outcome> {
  const n = typeof i === 'number' ? i : 0;
  const body = JSON.stringify({ i: n, fail, state: initialState(n, fail) });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: HOST,
        port: ingressPort,
        method: 'POST',
        path: '/BenchSaga/run',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': `${runId}:${i}` },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`ingress answered ${res.statusCode}: ${data}`));
          const outcome = JSON.parse(data) as unknown;
          resolve(outcome === 'finished' || outcome === 'compensated' ? outcome : 'error');
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let probes = 0;
await until('the first saga through the ingress', async () => (await invoke(`probe-${probes++}`, false)) === 'finished');

const pids = { 'restate-server': server.pid, endpoint: endpoint.child.pid, participant: participant.pid, driver: process.pid };
reportPids(pids);

let reported = 0;
async function runOne(i: number, fail: boolean): Promise<Outcome> {
  try {
    return await invoke(i, fail);
  } catch (err) {
    if (reported++ < 5) console.error(`saga ${i}:`, err instanceof Error ? err.message : err);
    return 'error';
  }
}

const { result, processes } = await measured(pids, () => drive(args, runOne));
reportResult({ contender: 'restate', concurrency: args.concurrency, failRate: args.failRate, ...result, processes });

agent.destroy();
await stop(participant);
await stop(endpoint.child);
await stop(server);
rmSync(dir, { recursive: true, force: true });
