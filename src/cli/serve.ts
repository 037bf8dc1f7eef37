import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import {
  AdminApi,
  FileSagaRepository,
  InspectionStream,
  RedisSagaRepository,
  Saga,
  SagaCluster,
  SagaError,
  SagaManager,
  WebSocketBroker,
  type SagaRepository,
} from '../index.js';
import { CliError, ExitCode, usage } from './cli-error.js';
import { loadSagas } from './sagas-module.js';

/** What `sagachart serve` is given, flags and environment merged. */
export interface ServeOptions {
  sagas: string;
  port: number;
  host: string;
  redis?: string | undefined;
  redisPrefix?: string | undefined;
  data: string;
  /** The operators' token; a random one is made and printed when missing. */
  token?: string | undefined;
  /** `service=token` pairs, from the flags and then SAGACHART_PARTICIPANT_TOKENS. */
  participantTokens: string[];
  /** This orchestrator's name in a cluster of several on one Redis (needs `redis`); none: a lone orchestrator. */
  instance?: string | undefined;
  /** The cluster lease (with `instance`). @defaultValue 3000 */
  leaseMs?: number | undefined;
}

/** What `serve` started, in the order it is closed. */
interface Running {
  admin: AdminApi;
  cluster: SagaCluster | undefined;
  manager: SagaManager;
  broker: WebSocketBroker;
  repository: SagaRepository;
  redis: Redis | undefined;
}

/**
 * `sagachart serve`: the participants' WebSocket broker, a manager on Redis or the file store with
 * the user's sagas, the admin API and metrics on the broker's port, recovery at start (and
 * periodically, by the manager). Runs until SIGINT or SIGTERM, then closes everything and exits 0.
 */
export async function serve(options: ServeOptions, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const auth = participantAuth(options.participantTokens);
  const exported = await loadSagas(options.sagas);
  const generated = options.token === undefined;
  const token = options.token ?? randomBytes(24).toString('base64url');
  if (token.length < 8) throw usage('the admin token (--token or SAGACHART_ADMIN_TOKEN) must be at least 8 characters');
  if (options.instance !== undefined && !options.redis) throw usage('--instance needs --redis (or REDIS_URL): the instances of a cluster share one Redis');

  const redis = options.redis ? await connectRedis(options.redis) : undefined;
  const running: Partial<Running> = { redis };
  try {
    running.repository = redis
      ? new RedisSagaRepository({ redis, ...(options.redisPrefix ? { keyPrefix: options.redisPrefix } : {}) })
      : await FileSagaRepository.open({ dir: options.data });
    running.broker = await WebSocketBroker.listen({ auth, port: options.port, host: options.host });
    if (redis && options.instance !== undefined) {
      running.cluster = await SagaCluster.start({
        redis,
        instance: options.instance,
        broker: running.broker,
        keyPrefix: options.redisPrefix ?? 'sagachart:',
        ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      });
    }
    const inspection = new InspectionStream();
    running.manager = new SagaManager({
      broker: running.broker,
      repository: running.repository,
      inspect: inspection.inspect,
      ...(running.cluster ? running.cluster.managerOptions() : {}),
    });
    for (const { saga } of exported) running.manager.register(saga);
    running.admin = AdminApi.attach(running.broker.server, {
      manager: running.manager,
      broker: running.broker,
      token,
      inspection,
      ...(running.cluster ? { router: running.cluster.actionRouter } : {}),
    });
  } catch (err) {
    await shutDown(running);
    throw startFailure(err);
  }
  const { broker, manager, cluster } = running as Running;
  const http = `http://${shownHost(options.host)}:${broker.port}`;
  const foreign = exported.filter((e) => !(e.saga instanceof Saga));
  out(`sagachart serve: ${exported.map((e) => `${e.saga.name}@${e.saga.hash}`).join(', ')}`);
  if (foreign.length) {
    out(
      `  warning: ${foreign.map((e) => e.exportName).join(', ')} come from another copy of sagachart than this CLI's; ` +
        'the requests their steps build will be refused. Make the module import the sagachart the CLI runs from.',
    );
  }
  out(`  store         ${redis ? `redis ${options.redis} (keys ${(running.repository as RedisSagaRepository).keyPrefix}*)` : `file ${resolve(options.data)}`}`);
  if (cluster) out(`  instance      ${cluster.instance}  (cluster of ${cluster.membership.members.join(', ')}; lease ${options.leaseMs ?? 3000} ms)`);
  out(`  participants  ${broker.url}  (services: ${Object.keys(auth).join(', ') || 'none; pass --participant-token service=token'})`);
  out(`  admin         ${http}/admin/`);
  out(`  metrics       ${http}/metrics  (with the admin token)`);
  if (generated) out(`  admin token   ${token}  (generated; pass --token or SAGACHART_ADMIN_TOKEN to choose one)`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`sagachart serve: ${signal} again, exiting without waiting\n`);
      process.exit(130);
    }
    stopping = true;
    out(`sagachart serve: ${signal}, closing`);
    shutDown(running).then(
      () => process.exit(ExitCode.Ok),
      (err: unknown) => {
        process.stderr.write(`sagachart serve: closing failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(ExitCode.Refused);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (cluster) {
    // The cluster picks up the executions this instance owns now, and later those of instances that leave.
    await cluster.attach(manager);
    out(`  recovered     the executions instance ${cluster.instance} owns (${cluster.membership.members.length} live instances)`);
    out('sagachart serve: ready');
    return;
  }
  const report = await manager.recover();
  out(`  recovered     ${report.recovered} executions (${report.resent} requests sent again, ${report.restarted} restarted${report.failed.length ? `, ${report.failed.length} failed` : ''})`);
  for (const f of report.failed) process.stderr.write(`sagachart serve: could not recover ${f.uuid}: ${f.code}: ${f.message}\n`);
  out('sagachart serve: ready');
}

/** `service=token` pairs: the flags first, then SAGACHART_PARTICIPANT_TOKENS (`svc=tok,svc2=tok2`). */
function participantAuth(pairs: string[]): Record<string, string> {
  const env = (process.env.SAGACHART_PARTICIPANT_TOKENS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const auth: Record<string, string> = {};
  for (const pair of [...env, ...pairs]) {
    const at = pair.indexOf('=');
    const service = pair.slice(0, at).trim();
    const token = pair.slice(at + 1);
    if (at < 1 || !token) throw usage(`participant token ${JSON.stringify(pair)} must be service=token`);
    auth[service] = token;
  }
  return auth;
}

async function connectRedis(url: string): Promise<Redis> {
  let last: Error | undefined;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null });
  redis.on('error', (err: Error) => (last = err));
  try {
    await redis.connect();
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new CliError(ExitCode.Unreachable, `cannot reach Redis at ${url} (${(last ?? (err as Error)).message}): start it, or fix --redis / REDIS_URL`);
  }
}

async function shutDown(r: Partial<Running>): Promise<void> {
  // The lease first: the other instances take this one's executions over at once.
  await r.cluster?.close();
  await r.admin?.close();
  await r.manager?.close();
  await r.broker?.close();
  await r.repository?.close?.();
  await r.redis?.quit().catch(() => r.redis?.disconnect());
}

function startFailure(err: unknown): Error {
  if (err instanceof CliError) return err;
  if (err instanceof SagaError) return new CliError(ExitCode.Refused, `${err.code}: ${err.message}`, err.code);
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES') return usage(`cannot listen: ${e.message}; pick another --port or --host`);
  if (err instanceof TypeError || err instanceof RangeError) return usage(err.message);
  return err instanceof Error ? err : new Error(String(err));
}

/** The host to print in URLs: a wildcard address is reached as localhost. */
function shownHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
