/**
 * The `sagachart` CLI as a user runs it: the built binary (`npm run build`, then
 * `node dist/src/cli/main.js`), `serve` in a child process with the file store (and one with
 * Redis), participants connected to it from this process over WebSocket, and every other command
 * run as a process of its own against it through the admin API.
 *
 * The executions are made before `serve` starts, by an orchestrator in this process on the same
 * file store, which then stops: `serve` takes them over (recovery) as it would from an
 * orchestrator that went down, and the operator steers them from the command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Sagachart from '../../src/index.js';
import { clearRedisPrefix } from '../support/clear-redis-prefix.js';
import { collectingLogger, until } from '../support/harness.js';
import { REDIS_URL } from '../support/redis.js';
import { ROOT } from '../support/run-script.js';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const SAGAS = 'test/fixtures/cli-sagas.mjs';
const ADMIN_TOKEN = 'cli-test-admin-token';
const TOKENS = { inventory: 'tok-inventory', payment: 'tok-payment' } as const;

interface Order {
  orderId: string;
  amount: number;
  [key: string]: unknown;
}

/** The CLI's environment: the built binary as a user runs it, without the test runner's resolution conditions. */
function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.NODE_OPTIONS;
  delete env.SAGACHART_URL;
  delete env.SAGACHART_ADMIN_TOKEN;
  delete env.SAGACHART_PARTICIPANT_TOKENS;
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end (asynchronously: the participants in this process must answer meanwhile). */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A `sagachart serve` child: its output lines, its ws and http addresses once it says it is ready. */
class Serve {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [CLI, 'serve', '--sagas', SAGAS, '--port', '0', ...args], {
      cwd: ROOT,
      env: cliEnv({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => this.lines.push(line));
    this.proc.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => this.proc.once('close', (code, signal) => resolve({ code, signal })));
  }

  async ready(): Promise<{ ws: string; http: string }> {
    await until(() => this.lines.includes('sagachart serve: ready') || this.proc.exitCode !== null, 'serve says it is ready', 15_000);
    if (!this.lines.includes('sagachart serve: ready')) throw new Error(`serve exited ${this.proc.exitCode}: ${this.lines.join('\n')}\n${this.stderr}`);
    const ws = /participants\s+(ws:\/\/\S+)/.exec(this.lines.join('\n'))![1]!;
    const http = /admin\s+(http:\/\/\S+)\/admin\//.exec(this.lines.join('\n'))![1]!;
    return { ws, http };
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.proc.pid!, 'SIGKILL');
  }
}

async function importBuilt(): Promise<{ lib: typeof Sagachart; CLI_ORDER: Sagachart.Saga<Order> }> {
  // The built package, the one the fixture module and the CLI use: one copy of every class.
  const lib = (await import(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)) as typeof Sagachart;
  const fixture = (await import(pathToFileURL(join(ROOT, SAGAS)).href)) as { CLI_ORDER: Sagachart.Saga<Order> };
  return { lib, CLI_ORDER: fixture.CLI_ORDER };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What the participants (in this process, in both phases) are told to do, and what they saw. */
const behaviour = { failRelease: true };
const seen: string[] = [];

function handlers(lib: typeof Sagachart): Record<keyof typeof TOKENS, Sagachart.ParticipantHandlers> {
  const note = (target: string, content: unknown) => seen.push(`${target} ${JSON.stringify(content)}`);
  return {
    inventory: {
      'inventory.reserve': (c) => (note('inventory.reserve', c), { id: `res-${(c as Order).orderId}` }),
      'inventory.release': (c) => {
        note('inventory.release', c);
        if (behaviour.failRelease) throw new lib.SagaBusinessError('the warehouse is offline');
        return {};
      },
    },
    payment: {
      'payment.charge': (c) => {
        note('payment.charge', c);
        const { orderId, amount } = c as Order;
        if (orderId === 'hang') return new Promise(() => undefined); // never answers
        if (amount > 100) throw new lib.SagaBusinessError('card declined');
        return { id: `ch-${orderId}` };
      },
      'payment.refund': (c) => (note('payment.refund', c), {}),
    },
  };
}

// The binary under test is the package as built: every test here runs what `npm run build` made.
beforeAll(async () => {
  const build = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('npm', ['run', 'build'], { cwd: ROOT, env: cliEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
  expect(build.code, build.output).toBe(0);
}, 120_000);

describe('the sagachart CLI against `sagachart serve` with the file store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sagachart-cli-'));
  let serve: Serve;
  let url: string;
  let saga: Sagachart.Saga<Order>;
  const participants: Sagachart.Participant[] = [];
  const uuids = { finished: '', failedCompensation: '', waiting: '', awaitingCommit: '', unregistered: '' };
  const cli = (...args: string[]) => run(args, { SAGACHART_URL: url, SAGACHART_ADMIN_TOKEN: ADMIN_TOKEN });
  const describeJson = async (uuid: string) => JSON.parse((await cli('show', uuid, '--json')).stdout) as { execution: ReturnType<Sagachart.SagaExecution['toJSON']>; outbox: unknown[] };

  beforeAll(async () => {
    const { lib, CLI_ORDER } = await importBuilt();
    saga = CLI_ORDER;

    // An orchestrator that runs four orders, then stops, leaving them in the store.
    const quiet = collectingLogger();
    const repository = await lib.FileSagaRepository.open({ dir, logger: quiet });
    const broker = new lib.InProcessBroker();
    const h = handlers(lib);
    broker.participant('inventory', h.inventory);
    broker.participant('payment', h.payment);
    const manager = new lib.SagaManager({ repository, broker, sagas: [CLI_ORDER], logger: quiet, recoverIntervalMs: 0 });
    uuids.finished = (await manager.run(CLI_ORDER, { context: { orderId: 'ok', amount: 30 }, user: 'alice' })).uuid;
    const failed = await manager.run(CLI_ORDER, { context: { orderId: 'declined', amount: 5000 }, raiseOnError: false });
    expect(failed.step('reserve')?.compensation?.error?.message).toContain('the warehouse is offline');
    uuids.failedCompensation = failed.uuid;
    uuids.waiting = (await manager.run(CLI_ORDER, { context: { orderId: 'hang', amount: 10 }, pauseOnDisk: true })).uuid;
    const deciding = await manager.run(CLI_ORDER, { context: { orderId: 'decide', amount: 10 }, autocommit: false });
    expect(deciding.awaitingCommit).toBe(true);
    uuids.awaitingCommit = deciding.uuid;
    // A saga that the module given to serve does not export.
    const elsewhere = new lib.Saga('cli-elsewhere').localStep('only').onExecute(() => undefined).commit();
    manager.register(elsewhere);
    uuids.unregistered = (await manager.run(elsewhere)).uuid;
    await manager.close();
    await repository.close();

    serve = new Serve(['--token', ADMIN_TOKEN, '--data', dir, '--participant-token', `inventory=${TOKENS.inventory}`, '--participant-token', `payment=${TOKENS.payment}`]);
    const ready = await serve.ready();
    url = ready.http;
    for (const service of ['inventory', 'payment'] as const) {
      participants.push(await lib.connectParticipant({ url: ready.ws, service, token: TOKENS[service], handlers: h[service], reconnect: false, logger: quiet }));
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(participants.map((p) => p.close()));
    serve?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve prints where it listens, what it runs and what it recovered', () => {
    const out = serve.lines.join('\n');
    expect(out).toContain(`sagachart serve: cli-order@${saga.hash}, cli-notify@`);
    expect(out).toMatch(/participants\s+ws:\/\/127\.0\.0\.1:\d+\s+\(services: inventory, payment\)/);
    expect(out).toMatch(/admin\s+http:\/\/127\.0\.0\.1:\d+\/admin\//);
    expect(out).toMatch(/metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(out).toMatch(/recovered\s+2 executions/);
    expect(out, 'a token was given: none is generated').not.toContain('generated');
  });

  it('list shows every execution with its status, and --json prints the API page', async () => {
    const text = await cli('list');
    expect(text.code, text.stderr).toBe(0);
    const rows = text.stdout.split('\n');
    expect(rows[0]).toMatch(/UUID\s+SAGA\s+STATUS\s+CREATED/);
    const rowOf = (uuid: string) => rows.find((r) => r.includes(uuid)) ?? '';
    expect(rowOf(uuids.finished)).toMatch(/cli-order@\w+\s+finished/);
    expect(rowOf(uuids.failedCompensation)).toContain('errored');
    expect(rowOf(uuids.waiting)).toContain('paused');

    const json = await cli('list', '--json');
    const page = JSON.parse(json.stdout) as Sagachart.SagaListPage;
    expect(page.items.map((i) => i.uuid).sort()).toEqual(Object.values(uuids).sort());
    expect(page.cursor).toBeNull();

    const errored = JSON.parse((await cli('list', '--status', 'errored', '--json')).stdout) as Sagachart.SagaListPage;
    expect(errored.items.map((i) => i.uuid)).toEqual([uuids.failedCompensation]);
    const paged = JSON.parse((await cli('list', '--limit', '1', '--json')).stdout) as Sagachart.SagaListPage;
    expect(paged.items).toHaveLength(1);
    expect(paged.cursor).toEqual(expect.any(String));
    const future = JSON.parse((await cli('list', '--since', new Date(Date.now() + 3_600_000).toISOString(), '--json')).stdout) as Sagachart.SagaListPage;
    expect(future.items).toEqual([]);
  });

  it('show prints the steps with their statuses, the failed compensation and the transaction', async () => {
    const { code, stdout, stderr } = await cli('show', uuids.failedCompensation);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`cli-order ${uuids.failedCompensation}  errored`);
    expect(stdout).toMatch(/error\s+SAGA_PARTICIPANT_REJECTED at charge: /);
    expect(stdout).toMatch(/reserve\s+remote\s+errored-on-failure\s+1\s/);
    expect(stdout).toMatch(/chart state\s+errored\n/);
    expect(stdout).toMatch(/charge\s+remote\s+errored-by-on-execute\s+1\s.*card declined/);
    expect(stdout).toMatch(/confirm\s+local\s+created/);
    expect(stdout).toMatch(/Compensations\n.*\n\s+reserve\s+failed\s+1\s.*the warehouse is offline/);
    expect(stdout).toMatch(/Transaction\n.*\n\s+reject\s+ok\s/);

    const finished = await cli('show', uuids.finished);
    expect(finished.stdout).toMatch(/user\s+alice/);
    expect(finished.stdout).toMatch(/reserve\s+ok\s.*inventory yes, payment yes/);
    expect(finished.stdout).toMatch(/commit\s+ok\s.*inventory ack, payment ack/);
    expect(finished.stdout).not.toContain('Compensations');

    const waiting = await cli('show', uuids.waiting);
    expect(waiting.stdout).toMatch(/waiting on\s+charge/);
    expect(waiting.stdout).toMatch(/chart state\s+running\.charge\.paused-by-on-execute\n/);
    expect(waiting.stdout).toMatch(/Waiting for\n\s+payment\.charge\s+execute of charge, attempt 1/);
    expect(waiting.stdout, 'no escape codes into a pipe').not.toContain('\u001b[');

    const unreadable = await cli('show', uuids.unregistered);
    expect(unreadable.code, unreadable.stderr).toBe(0);
    expect(unreadable.stdout).toContain(`cli-elsewhere ${uuids.unregistered}  finished`);
    expect(unreadable.stdout).toContain('cannot be read here: SAGA_NOT_REGISTERED: ');
  });

  it('diagram prints the Mermaid of a saga of the module, without a server', async () => {
    const states = await run(['diagram', SAGAS, 'CLI_ORDER', '--url', 'http://127.0.0.1:9']);
    expect(states.code, states.stderr).toBe(0);
    expect(states.stdout.startsWith('stateDiagram-v2\n')).toBe(true);
    expect(states.stdout).toContain(`%% cli-order@${saga.hash}`);
    expect(states.stdout).toContain('state "reserve" as');
    const steps = await run(['diagram', SAGAS, 'cli-notify', '--detail', 'steps']);
    expect(steps.stdout).toContain('state "notify · remote" as s_notify');

    const several = await run(['diagram', SAGAS]);
    expect(several.code).toBe(2);
    expect(several.stderr).toContain('CLI_ORDER (cli-order), more (cli-notify); name one');
    const none = await run(['diagram', 'dist/src/status.js']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('exports no committed saga');
  });

  it('retry of a failed compensation runs it again through serve: failing again, then compensated', async () => {
    const again = await cli('retry', uuids.failedCompensation);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`retry-compensation ${uuids.failedCompensation}: errored`);
    expect(again.stdout).toMatch(/reserve {2}errored-on-failure\n/);
    expect(seen.filter((s) => s.startsWith('inventory.release'))).toHaveLength(2);

    behaviour.failRelease = false;
    const fixed = await cli('retry', uuids.failedCompensation, 'reserve', '--note', 'warehouse back');
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/reserve {2}finished \(compensated\)/);
    const { execution } = await describeJson(uuids.failedCompensation);
    expect(execution.steps.find((s) => s.path === 'reserve')).toMatchObject({ compensated: true, compensation: { error: null, attempts: expect.any(Number) } });
    expect(execution.history.map((h) => [h.action, h.step, h.note])).toEqual([
      ['retry-compensation', 'reserve', undefined],
      ['retry-compensation', 'reserve', 'warehouse back'],
    ]);
    const shown = await cli('show', uuids.failedCompensation);
    expect(shown.stdout).toMatch(/Compensations\n.*\n\s+reserve\s+compensated/);
    expect(shown.stdout).toMatch(/History\n.*retry-compensation reserve\n.*retry-compensation reserve {2}"warehouse back"/);

    const nothing = await cli('retry', uuids.failedCompensation, '--compensation');
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('SAGA_INVALID_STATE');
  });

  it('abort stops an execution waiting on a participant and rolls it back', async () => {
    const charges = () => seen.filter((s) => s.startsWith('payment.charge {"orderId":"hang"')).length;
    // Once by the first orchestrator, once more by serve's recovery.
    await until(() => charges() === 2, 'serve sent the waiting charge again', 10_000);
    const sent = charges();
    const retried = await cli('retry', uuids.waiting);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain(`retry-step ${uuids.waiting}: paused`);
    await until(() => charges() === sent + 1, 'the charge is sent again, as a new attempt');

    const before = seen.length;
    const aborted = await cli('abort', uuids.waiting, '--note', 'customer called');
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain(`abort ${uuids.waiting}: errored  (SAGA_ABORTED)`);
    expect(seen.slice(before)).toEqual(['payment.refund {"orderId":"hang"}', 'inventory.release {"id":"res-hang"}']);
    const { execution, outbox } = await describeJson(uuids.waiting);
    expect(execution.status).toBe('errored');
    expect(execution.history).toEqual([
      { action: 'retry-step', at: expect.any(Number), step: 'charge' },
      { action: 'abort', at: expect.any(Number), note: 'customer called' },
    ]);
    expect(outbox).toEqual([]);

    const again = await cli('abort', uuids.finished);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^sagachart: SAGA_INVALID_STATE: .*cannot abort/);
  });

  it('commit decides an execution awaiting its commit decision', async () => {
    const committed = await cli('commit', uuids.awaitingCommit, '--json');
    expect(committed.code, committed.stderr).toBe(0);
    const answer = JSON.parse(committed.stdout) as { action: string; execution: { status: string; history: unknown[] }; outcome: unknown };
    expect(answer).toMatchObject({ action: 'commit', execution: { status: 'finished' }, outcome: null });
    expect(answer.execution.history).toEqual([{ action: 'commit', at: expect.any(Number) }]);
  });

  it('counts tells executions per status', async () => {
    const text = await cli('counts');
    expect(text.stdout).toMatch(/finished\s+3\n/);
    expect(text.stdout).toMatch(/errored\s+2\n/);
    expect(text.stdout).toMatch(/total\s+5/);
    expect(JSON.parse((await cli('counts', '--json')).stdout)).toEqual({ created: 0, running: 0, paused: 0, finished: 3, errored: 2 });
  });

  it('start runs a saga on the server: it answers once the execution waits or has ended; unknown sagas and bad contexts are refused', async () => {
    const started = await cli('start', 'cli-order', '--context', '{"orderId":"o-start","amount":5}', '--user', 'ops', '--json');
    expect(started.code, started.stderr).toBe(0);
    const { execution } = JSON.parse(started.stdout) as { execution: { uuid: string; sagaName: string; status: string; user: string } };
    expect(execution).toMatchObject({ sagaName: 'cli-order', user: 'ops' });
    expect(['paused', 'finished']).toContain(execution.status);
    const text = await cli('start', 'cli-order', '--context', '{"orderId":"o-start-2","amount":1}');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^[0-9a-f-]{36} cli-order (paused|finished)/);
    const unknown = await cli('start', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('SAGA_NOT_REGISTERED');
    const bad = await cli('start', 'cli-order', '--context', '[1]');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--context must be a JSON object');
  });

  it('refusals: a wrong token exits 4, a missing execution 1, a bad command line 2, an unreachable server 3', async () => {
    const wrong = await run(['list'], { SAGACHART_URL: url, SAGACHART_ADMIN_TOKEN: 'not-the-token' });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('401 (the token was refused): pass the operators\' token with --token or SAGACHART_ADMIN_TOKEN');
    const none = await run(['show', uuids.finished, '--url', url]);
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('no token was given');

    const missing = await cli('show', 'no-such-execution');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^sagachart: SAGA_EXECUTION_NOT_FOUND: /);
    const missingAction = await cli('abort', 'no-such-execution');
    expect(missingAction.code).toBe(1);
    expect(missingAction.stderr).toContain('SAGA_EXECUTION_NOT_FOUND');

    for (const args of [['list', '--status', 'sleeping'], ['list', '--limit', 'lots'], ['frobnicate'], ['resolve', uuids.finished], ['retry', uuids.finished, '--compensation', '--step-request']]) {
      const bad = await cli(...args);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr.length, args.join(' ')).toBeGreaterThan(0);
    }

    const port = await closedPort();
    const down = await run(['list', '--url', `http://127.0.0.1:${port}`, '--token', ADMIN_TOKEN]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach the sagachart server at http://127.0.0.1:${port} (ECONNREFUSED): start it with \`sagachart serve --sagas <module>\``);
  });

  it('SIGTERM closes everything (the file store is released) and exits 0', async () => {
    await Promise.all(participants.splice(0).map((p) => p.close()));
    process.kill(serve.proc.pid!, 'SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(serve.lines).toContain('sagachart serve: SIGTERM, closing');
    expect(existsSync(join(dir, 'LOCK')), 'the store LOCK is released').toBe(false);
  });
});

describe('sagachart serve with Redis', () => {
  const prefix = `sagachart-test:${randomBytes(6).toString('hex')}:`;
  let serve: Serve | undefined;
  const redis = new Redis(REDIS_URL, { lazyConnect: true });

  afterAll(async () => {
    serve?.kill();
    await clearRedisPrefix(redis, prefix).catch(() => undefined);
    redis.disconnect();
  });

  it('serves executions stored in Redis under a key prefix', async () => {
    const { lib, CLI_ORDER } = await importBuilt();
    const quiet = collectingLogger();
    const repository = new lib.RedisSagaRepository({ redis: REDIS_URL, keyPrefix: prefix, logger: quiet });
    const broker = new lib.InProcessBroker();
    const h = handlers(lib);
    broker.participant('inventory', h.inventory);
    broker.participant('payment', h.payment);
    const manager = new lib.SagaManager({ repository, broker, sagas: [CLI_ORDER], logger: quiet, recoverIntervalMs: 0 });
    const { uuid } = await manager.run(CLI_ORDER, { context: { orderId: 'redis', amount: 1 } });
    await manager.close();
    await repository.close();

    serve = new Serve(['--redis', REDIS_URL, '--redis-prefix', prefix]);
    const { http } = await serve.ready();
    const out = serve.lines.join('\n');
    expect(out).toContain(`store         redis ${REDIS_URL} (keys ${prefix}*)`);
    expect(out).toContain('services: none; pass --participant-token service=token');
    // No --token: one is made up and printed.
    const token = /admin token\s+(\S+)\s+\(generated/.exec(out)?.[1];
    expect(token).toMatch(/^[\w-]{32}$/);
    const env = { SAGACHART_URL: http, SAGACHART_ADMIN_TOKEN: token! };
    const page = JSON.parse((await run(['list', '--json'], env)).stdout) as Sagachart.SagaListPage;
    expect(page.items.map((i) => [i.uuid, i.status])).toEqual([[uuid, 'finished']]);
    const shown = await run(['show', uuid], env);
    expect(shown.stdout).toMatch(/confirm\s+local\s+finished/);

    process.kill(serve.proc.pid!, 'SIGINT');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(serve.lines).toContain('sagachart serve: SIGINT, closing');
  });

  it('says so when Redis cannot be reached (exit 3)', async () => {
    const port = await closedPort();
    const down = await run(['serve', '--sagas', SAGAS, '--port', '0', '--redis', `redis://127.0.0.1:${port}`]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach Redis at redis://127.0.0.1:${port} (connect ECONNREFUSED`);
  });
});

describe('sagachart serve --instance: two orchestrators on one Redis', () => {
  const prefix = `sagachart-test:${randomBytes(6).toString('hex')}:`;
  const serves: Serve[] = [];
  const participants: Sagachart.Participant[] = [];
  const redis = new Redis(REDIS_URL, { lazyConnect: true });

  afterAll(async () => {
    await Promise.all(participants.map((p) => p.close()));
    for (const s of serves) s.kill();
    await clearRedisPrefix(redis, prefix).catch(() => undefined);
    redis.disconnect();
  });

  it('--instance needs --redis (exit 2)', async () => {
    const alone = await run(['serve', '--sagas', SAGAS, '--port', '0', '--instance', 'a']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--instance needs --redis');
  });

  it('each instance prints its name; a saga started on one reaches a participant connected to the other; an abort sent to the instance that does not own it takes effect', async () => {
    const { lib } = await importBuilt();
    const quiet = collectingLogger();
    const common = ['--redis', REDIS_URL, '--redis-prefix', prefix, '--lease-ms', '1000', '--token', ADMIN_TOKEN, '--participant-token', `inventory=${TOKENS.inventory}`, '--participant-token', `payment=${TOKENS.payment}`];
    const a = new Serve([...common, '--instance', 'orchestrator-a']);
    serves.push(a);
    const readyA = await a.ready();
    const b = new Serve([...common, '--instance', 'orchestrator-b']);
    serves.push(b);
    const readyB = await b.ready();
    expect(a.lines.join('\n')).toMatch(/instance\s+orchestrator-a\s+\(cluster of orchestrator-a; lease 1000 ms\)/);
    expect(b.lines.join('\n')).toMatch(/instance\s+orchestrator-b\s+\(cluster of orchestrator-a, orchestrator-b; lease 1000 ms\)/);
    // inventory is connected to a only, payment to b only.
    const h = handlers(lib);
    participants.push(await lib.connectParticipant({ url: readyA.ws, service: 'inventory', token: TOKENS.inventory, handlers: h.inventory, reconnect: false, logger: quiet }));
    participants.push(await lib.connectParticipant({ url: readyB.ws, service: 'payment', token: TOKENS.payment, handlers: h.payment, reconnect: false, logger: quiet }));
    const onA = { SAGACHART_URL: readyA.http, SAGACHART_ADMIN_TOKEN: ADMIN_TOKEN };
    const onB = { SAGACHART_URL: readyB.http, SAGACHART_ADMIN_TOKEN: ADMIN_TOKEN };
    // Until a sees b, a's requests for payment would wait for one: both must know each other first.
    await until(async () => (await redis.zcard(`${prefix}{route}:instances`)) === 2, 'both instances hold a lease');
    await new Promise((r) => setTimeout(r, 700));

    // A whole saga started on a: its charge goes through Redis to b's payment participant, the answer back to a.
    const done = await run(['start', 'cli-order', '--context', '{"orderId":"across","amount":3}', '--json'], onA);
    expect(done.code, done.stderr).toBe(0);
    const doneUuid = (JSON.parse(done.stdout) as { execution: { uuid: string } }).execution.uuid;
    await until(async () => JSON.parse((await run(['show', doneUuid, '--json'], onB)).stdout).execution?.status === 'finished', 'the saga started on a finishes', 10_000);
    expect(seen).toContain('payment.charge {"orderId":"across","amount":3}');

    // One that waits on its charge, owned by a (started there); aborted through b.
    const started = await run(['start', 'cli-order', '--context', '{"orderId":"hang","amount":7}', '--json'], onA);
    expect(started.code, started.stderr).toBe(0);
    const uuid = (JSON.parse(started.stdout) as { execution: { uuid: string } }).execution.uuid;
    await until(() => seen.includes('payment.charge {"orderId":"hang","amount":7}'), 'the charge reached the participant on b', 10_000);
    expect(lib.ownerAmong(['orchestrator-a', 'orchestrator-b'], uuid)).toBe('orchestrator-a');
    const before = seen.length;
    const aborted = await run(['abort', uuid, '--note', 'through b'], onB);
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain(`abort ${uuid}: errored  (SAGA_ABORTED)`);
    await until(() => seen.slice(before).includes('inventory.release {"id":"res-hang"}'), 'the reserve is released');
    expect(seen.slice(before)).toEqual(['payment.refund {"orderId":"hang"}', 'inventory.release {"id":"res-hang"}']);
    const listed = JSON.parse((await run(['list', '--json'], onB)).stdout) as Sagachart.SagaListPage;
    expect(listed.items.map((i) => [i.uuid, i.status]).sort()).toEqual([[doneUuid, 'finished'], [uuid, 'errored']].sort());

    // SIGTERM: the cluster is left first (the lease given up), then everything else; exit 0.
    await Promise.all(participants.splice(0).map((p) => p.close()));
    process.kill(a.proc.pid!, 'SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await redis.zrange(`${prefix}{route}:instances`, 0, -1)).toEqual(['orchestrator-b']);
    process.kill(b.proc.pid!, 'SIGINT');
    expect(await b.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
