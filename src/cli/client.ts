import type { SagaExecution, SagaExecutionDetails, SagaListPage, SagaManagerStats, SagaOperatorAction, SagaRecordSummary, SagaStatus } from '../index.js';
import { CliError, ExitCode, usage } from './cli-error.js';

/** An execution as the admin API sends it (`SagaExecution.toJSON()`). */
export type ExecutionJson = ReturnType<SagaExecution['toJSON']>;

/** `GET /admin/api/executions/:uuid`. */
export interface DescribeJson {
  /** `null` when the server cannot read it (its saga or version is not registered there, or its snapshot is broken): then `record` and `problem` say what is stored and why. */
  execution: ExecutionJson | null;
  record?: SagaRecordSummary;
  problem?: { code: string; message: string };
  outbox: SagaExecutionDetails['outbox'];
  timer: SagaExecutionDetails['timer'];
  version: number | null;
  updatedAt: number | null;
  value: unknown;
  /** The chart's active state ids. */
  active: string[];
  chart: string | null;
}

/** `GET /admin/api/overview`. */
export interface OverviewJson {
  counts: Record<SagaStatus, number> | null;
  manager: SagaManagerStats;
  broker: { connections: number; inflight: number; held: number; services: string[] } | null;
  sagas: Array<{ name: string; hash: string; steps: number; chart: string }>;
}

/** The answer to an action: 200 once the execution settled, 202 (`pending`) while it is still under way. */
export interface ActionJson {
  action: string;
  execution: ExecutionJson;
  /** The failure the execution ended with because of the action (a compensation that failed again). */
  outcome: { code: string; message: string } | null;
  pending?: boolean;
}

export type AdminAction = SagaOperatorAction;

/** What the action sends: the step or service it is about, and the operator's note. */
export interface ActionBody {
  step?: string;
  service?: string;
  note?: string;
}

/** Longer than the admin API's default wait for an action (10 s), so its 202 arrives first. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * The admin API of a running `sagachart serve`, as the CLI uses it. Failures are `CliError`s
 * with the exit code they mean: refused (1), unreachable (3), unauthorized (4).
 *
 * @example
 * ```ts
 * const client = new AdminClient('http://127.0.0.1:7400', process.env.SAGACHART_ADMIN_TOKEN);
 * const { execution } = await client.describe(uuid);
 * ```
 */
export class AdminClient {
  /** The server's origin and path prefix, without the trailing slash. */
  readonly baseUrl: string;

  constructor(
    url: string,
    readonly token: string | undefined,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw usage(`--url ${JSON.stringify(url)} is not a URL; pass the server's address, e.g. http://127.0.0.1:7400`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`--url ${url} must be http:// or https://`);
    // The dashboard's address (…/admin/) works too.
    this.baseUrl = parsed.href.replace(/\/+$/, '').replace(/\/admin$/, '');
  }

  list(query: Record<string, string | number | undefined>): Promise<SagaListPage> {
    return this.#request('GET', '/admin/api/executions', { query });
  }

  describe(uuid: string): Promise<DescribeJson> {
    return this.#request('GET', `/admin/api/executions/${encodeURIComponent(uuid)}`);
  }

  overview(): Promise<OverviewJson> {
    return this.#request('GET', '/admin/api/overview');
  }

  /** Starts an execution of a registered saga; answers once it waits or has ended. */
  start(body: { saga: string; context?: Record<string, unknown>; user?: string; uuid?: string; autocommit?: boolean }): Promise<{ execution: ExecutionJson }> {
    return this.#request('POST', '/admin/api/executions', { body, timeoutMs: 60_000 });
  }

  /** Runs an action; `waitMs` is how long the server waits for the execution to settle before it answers 202. */
  act(uuid: string, action: AdminAction, body: ActionBody, waitMs?: number): Promise<ActionJson> {
    const query = waitMs === undefined ? {} : { wait: waitMs };
    return this.#request('POST', `/admin/api/executions/${encodeURIComponent(uuid)}/${action}`, { query, body, timeoutMs: (waitMs ?? 10_000) + REQUEST_TIMEOUT_MS });
  }

  async #request<T>(method: string, path: string, options: { query?: Record<string, string | number | undefined>; body?: object; timeoutMs?: number } = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.body) headers['content-type'] = 'application/json';
    const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(options.body ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw this.#unreachable(err, timeoutMs);
    }
    const text = await res.text().catch(() => '');
    const json = parseJson(text);
    if (res.status === 401) {
      const why = this.token ? 'the token was refused' : 'no token was given';
      throw new CliError(ExitCode.Unauthorized, `${this.baseUrl} answered 401 (${why}): pass the operators' token with --token or SAGACHART_ADMIN_TOKEN`, 'SAGA_ADMIN_UNAUTHORIZED');
    }
    if (!res.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (error && typeof error.code === 'string') throw new CliError(ExitCode.Refused, `${error.code}: ${String(error.message ?? '')}`, error.code);
      throw new CliError(ExitCode.Refused, `HTTP_${res.status}: ${url.origin} answered ${res.status} ${res.statusText} to ${method} ${url.pathname}; is it a sagachart serve? ${text.slice(0, 200)}`.trim(), `HTTP_${res.status}`);
    }
    if (json === undefined) throw new CliError(ExitCode.Refused, `${url.origin} answered ${method} ${url.pathname} with something that is not JSON; is it a sagachart serve?`);
    return json as T;
  }

  #unreachable(err: unknown, timeoutMs: number): CliError {
    const e = err as { name?: string; cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? (err instanceof Error ? err.message : String(err)));
    return new CliError(ExitCode.Unreachable, `cannot reach the sagachart server at ${this.baseUrl} (${why}): start it with \`sagachart serve --sagas <module>\`, or point --url (or SAGACHART_URL) at it`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
