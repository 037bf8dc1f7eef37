#!/usr/bin/env node
/**
 * The `sagachart` command: `serve` runs an orchestrator (broker, admin API, recovery); the other
 * commands talk to a running one through its admin API, so they work with any store while it
 * runs, and `diagram` draws a saga from its module without a server.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CliError, ExitCode, usage } from './cli-error.js';
import { AdminClient, type ActionBody, type AdminAction } from './client.js';
import { Formatter, useColour } from './format.js';
import { loadSagas } from './sagas-module.js';

// `serve` and `diagram` load the library (about half a second); the commands that only talk to
// the admin API do not.
const library = () => import('../index.js');

const STATUSES = ['created', 'running', 'paused', 'finished', 'errored'];

const program = new Command('sagachart')
  .description('Run a saga orchestrator, and see and steer its executions.')
  .exitOverride()
  .showHelpAfterError('(add --help for usage)')
  .addOption(new Option('--url <url>', "a running `sagachart serve`'s address").env('SAGACHART_URL').default('http://127.0.0.1:7400'))
  .addOption(new Option('--token <token>', "the operators' admin token").env('SAGACHART_ADMIN_TOKEN'))
  .addHelpText(
    'after',
    `
Exit codes: 0 done; 1 the admin API refused (its code and message are printed); 2 a usage error;
3 the server cannot be reached; 4 the token is missing or wrong.
Start with \`sagachart serve --sagas ./dist/sagas.js\`, then \`sagachart list\` (see README, Operating).`,
  );

interface Globals {
  url: string;
  token?: string;
}

const write = (text: string) => process.stdout.write(text);
const formatter = () => new Formatter(useColour());
const clientOf = (cmd: Command) => {
  const g = cmd.optsWithGlobals<Globals>();
  return new AdminClient(g.url, g.token);
};
const json = (value: unknown) => write(`${JSON.stringify(value, null, 2)}\n`);

function whole(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

program
  .command('serve')
  .description('run the orchestrator: the participants\' WebSocket broker, the admin API and dashboard at /admin/, /metrics, and recovery')
  .requiredOption('--sagas <module>', 'ES module exporting the committed sagas to run (default or named exports, arrays too)')
  .addOption(new Option('--port <port>', 'port of the broker, admin API and metrics (0: any free port)').default(7400).argParser(whole('--port', 0, 65535)))
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--redis <url>', 'store executions in Redis at this URL (else in the file store)').env('REDIS_URL'))
  .option('--redis-prefix <prefix>', 'prefix of every Redis key', 'sagachart:')
  .option('--data <dir>', 'directory of the file store (without --redis)', './.sagachart')
  .option('--participant-token <service=token>', 'a participant service and its token (repeat it; also SAGACHART_PARTICIPANT_TOKENS="svc=tok,svc2=tok2")', collect, [])
  .option('--instance <name>', "run as one instance of a cluster of orchestrators sharing --redis: this instance's name, unique and the same across its restarts")
  .addOption(new Option('--lease-ms <ms>', "with --instance: the instance's lease; the others take its executions over once it has not renewed it for this long").default(3000).argParser(whole('--lease-ms', 100, 600_000)))
  .action(async (opts: { sagas: string; port: number; host: string; redis?: string; redisPrefix: string; data: string; participantToken: string[]; instance?: string; leaseMs: number }, cmd: Command) => {
    const { token } = cmd.optsWithGlobals<Globals>();
    const { serve } = await import('./serve.js');
    const { participantToken, instance, leaseMs, ...rest } = opts;
    await serve({ ...rest, token, participantTokens: participantToken, ...(instance !== undefined ? { instance, leaseMs } : {}) });
  });

program
  .command('list')
  .description('list executions, newest first')
  .option('--status <statuses>', `only these statuses, comma-separated (${STATUSES.join(', ')})`)
  .option('--saga <name>', 'only executions of this saga')
  .option('--limit <n>', 'page size (1-1000)', whole('--limit', 1, 1000))
  .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
  .option('--since <time>', 'created at or after this time (ISO 8601, or ms since the epoch)')
  .option('--json', "print the admin API's JSON")
  .action(async (opts: { status?: string; saga?: string; limit?: number; cursor?: string; since?: string; json?: boolean }, cmd: Command) => {
    const statuses = opts.status?.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = statuses?.filter((s) => !STATUSES.includes(s)) ?? [];
    if (unknown.length) throw usage(`--status: no status ${unknown.map((s) => `"${s}"`).join(', ')}; the statuses are ${STATUSES.join(', ')}`);
    const page = await clientOf(cmd).list({
      status: statuses?.join(','),
      saga: opts.saga,
      limit: opts.limit,
      cursor: opts.cursor,
      createdAfter: opts.since === undefined ? undefined : since(opts.since),
    });
    if (opts.json) json(page);
    else write(formatter().list(page));
  });

program
  .command('show <uuid>')
  .description('one execution: its steps, compensations, transaction, history and what it waits for')
  .option('--json', "print the admin API's JSON")
  .action(async (uuid: string, opts: { json?: boolean }, cmd: Command) => {
    const details = await clientOf(cmd).describe(uuid);
    if (opts.json) json(details);
    else write(formatter().execution(details));
  });

program
  .command('counts')
  .description('how many executions are in each status')
  .option('--json', "print the admin API's JSON")
  .action(async (opts: { json?: boolean }, cmd: Command) => {
    const overview = await clientOf(cmd).overview();
    if (opts.json) json(overview.counts);
    else write(formatter().counts(overview));
  });

program
  .command('diagram <module> [export]')
  .description("print a saga's compiled statechart as Mermaid, from its module (no server needed); [export] names the export or the saga")
  .addOption(new Option('--detail <detail>', 'every state, or one box per step').choices(['states', 'steps']).default('states'))
  .option('--json', 'print { name, hash, mermaid }')
  .action(async (module: string, name: string | undefined, opts: { detail: 'states' | 'steps'; json?: boolean }) => {
    const exported = await loadSagas(module);
    const chosen = name === undefined ? exported : exported.filter((e) => e.exportName === name || e.saga.name === name);
    const list = exported.map((e) => (e.exportName === e.saga.name ? e.exportName : `${e.exportName} (${e.saga.name})`)).join(', ');
    if (!chosen.length) throw usage(`${module} has no saga exported as or named "${name}"; it has ${list}`);
    if (chosen.length > 1) throw usage(`${module} exports ${chosen.length} sagas: ${list}; name one: sagachart diagram ${module} <export>`);
    const { saga } = chosen[0]!;
    const mermaid = (await library()).sagaDiagram(saga, { detail: opts.detail });
    if (opts.json) json({ name: saga.name, hash: saga.hash, mermaid });
    else write(mermaid.endsWith('\n') ? mermaid : `${mermaid}\n`);
  });

program
  .command('start <saga>')
  .description('start an execution of a saga the server runs; answers once it waits on a participant or has ended')
  .option('--context <json>', 'its initial context, a JSON object', '{}')
  .option('--user <user>', 'who starts it (sent with its requests)')
  .option('--uuid <uuid>', 'its id (a new one by default)')
  .option('--no-autocommit', 'wait for `sagachart commit` once its steps are done')
  .option('--json', "print the admin API's JSON")
  .action(async (saga: string, opts: { context: string; user?: string; uuid?: string; autocommit: boolean; json?: boolean }, cmd: Command) => {
    let context: unknown;
    try {
      context = JSON.parse(opts.context);
    } catch {
      throw usage(`--context must be a JSON object, e.g. --context '{"orderId": 42}'`);
    }
    if (typeof context !== 'object' || context === null || Array.isArray(context)) throw usage(`--context must be a JSON object, e.g. --context '{"orderId": 42}'`);
    const answer = await clientOf(cmd).start({ saga, context: context as Record<string, unknown>, ...(opts.user ? { user: opts.user } : {}), ...(opts.uuid ? { uuid: opts.uuid } : {}), ...(opts.autocommit ? {} : { autocommit: false }) });
    if (opts.json) json(answer);
    else write(`${answer.execution.uuid} ${answer.execution.sagaName} ${answer.execution.status}${answer.execution.pausedStep ? ` (waiting on ${answer.execution.pausedStep})` : ''}\n`);
  });

/** The options every action takes. */
function actionCommand(spec: string, description: string): Command {
  return program
    .command(spec)
    .description(description)
    .option('--note <text>', 'why, kept in the execution\'s history')
    .option('--wait <ms>', 'how long the server waits for the execution to settle before answering "pending"', whole('--wait', 0, 120_000))
    .option('--json', "print the admin API's JSON");
}

interface ActionOptions {
  note?: string;
  wait?: number;
  json?: boolean;
}

async function act(cmd: Command, uuid: string, action: AdminAction, body: ActionBody, opts: ActionOptions): Promise<void> {
  const answer = await clientOf(cmd).act(uuid, action, { ...body, ...(opts.note !== undefined ? { note: opts.note } : {}) }, opts.wait);
  if (opts.json) json(answer);
  else write(formatter().action(answer));
}

actionCommand('retry <uuid> [step]', "run a failed compensation again, or send the request a waiting step waits on again now")
  .option('--compensation', 'retry the step\'s failed compensation')
  .option('--step-request', 'send the step\'s request again')
  .action(async (uuid: string, step: string | undefined, opts: ActionOptions & { compensation?: boolean; stepRequest?: boolean }, cmd: Command) => {
    if (opts.compensation && opts.stepRequest) throw usage('retry takes --compensation or --step-request, not both');
    let action: AdminAction = opts.compensation ? 'retry-compensation' : 'retry-step';
    if (!opts.compensation && !opts.stepRequest) {
      const { execution } = await clientOf(cmd).describe(uuid);
      const failed = (execution?.steps ?? []).filter((s) => s.compensation?.error && !s.compensation.resolved && !s.compensated);
      const target = step === undefined ? failed : failed.filter((s) => s.path === step || s.name === step);
      if (target.length) action = 'retry-compensation';
    }
    await act(cmd, uuid, action, step === undefined ? {} : { step }, opts);
  });

actionCommand('resolve <uuid> [step]', "mark a failed compensation as dealt with by hand, or (--service) a service's part of a commit or reject")
  .option('--service <service>', 'resolve this service\'s part of the commit or reject under way')
  .action(async (uuid: string, step: string | undefined, opts: ActionOptions & { service?: string }, cmd: Command) => {
    if (opts.service !== undefined && step !== undefined) throw usage('resolve takes a step or --service <service>, not both');
    if (opts.service !== undefined) await act(cmd, uuid, 'resolve-transaction', { service: opts.service }, opts);
    else if (step !== undefined) await act(cmd, uuid, 'resolve-compensation', { step }, opts);
    else throw usage('resolve needs the step whose compensation failed (resolve <uuid> <step>) or --service <service>');
  });

actionCommand('abort <uuid>', 'stop a running or paused execution and roll it back').action((uuid: string, opts: ActionOptions, cmd: Command) => act(cmd, uuid, 'abort', {}, opts));
actionCommand('commit <uuid>', 'commit an execution waiting for its commit decision').action((uuid: string, opts: ActionOptions, cmd: Command) => act(cmd, uuid, 'commit', {}, opts));
actionCommand('reject <uuid>', 'reject an execution waiting for its commit decision (rolls it back)').action((uuid: string, opts: ActionOptions, cmd: Command) => act(cmd, uuid, 'reject', {}, opts));

function since(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw usage(`--since ${JSON.stringify(value)} is not a time; give ISO 8601 (2026-12-02T16:00:00Z) or ms since the epoch`);
  return ms;
}

function fail(err: unknown): void {
  let code: ExitCode = ExitCode.Refused;
  if (err instanceof CommanderError) {
    // Commander printed its own message (or the help, or the version).
    code = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? ExitCode.Ok : ExitCode.Usage;
  } else if (err instanceof CliError) {
    process.stderr.write(`sagachart: ${err.message}\n`);
    code = err.exitCode;
  } else {
    process.stderr.write(`sagachart: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exitCode = code;
  // Exits as soon as nothing is left to do; a handle left open (a half-started server) does not keep it up.
  setTimeout(() => process.exit(code), 500).unref();
}

program.parseAsync(process.argv).catch(fail);
