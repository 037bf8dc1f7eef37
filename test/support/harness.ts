import {
  InProcessBroker,
  isTransactionPhase,
  SagaManager,
  type SagaExecution,
  type SagaResponseData,
  type JsonValue,
  type LogFields,
  type OutgoingRequest,
  type ParticipantHandlers,
  type ResponseListener,
  type SagaBroker,
  type SagaLogger,
} from '../../src/index.js';

/** A logger that keeps what it is told, so tests can assert on ignored responses. */
export function collectingLogger(): SagaLogger & { lines: Array<{ level: string; message: string; fields?: LogFields }> } {
  const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const at = (level: string) => (message: string, fields?: LogFields) => lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * An in-process broker whose participants write every request they handle to `seen`, as
 * `target` strings in the order handled: the order a participant saw requests and compensations.
 */
export function recordingBroker(services: Record<string, ParticipantHandlers>): { broker: InProcessBroker; seen: string[] } {
  const broker = new InProcessBroker();
  const seen: string[] = [];
  for (const [service, handlers] of Object.entries(services)) {
    const wrapped: ParticipantHandlers = {};
    for (const [target, handler] of Object.entries(handlers)) {
      wrapped[target] = (content, info) => {
        seen.push(info.target);
        return handler(content, info);
      };
    }
    broker.participant(service, wrapped);
  }
  return { broker, seen };
}

/** Lets queued microtasks, immediates and store tasks run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** Polls `check` until it holds (real time, bounded); throws with `what` otherwise. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A broker that only records requests; the test answers them by hand with `answer()`. For tests
 * of pausing, recovery, duplicates and late responses.
 */
export class ManualBroker implements SagaBroker {
  readonly requests: OutgoingRequest[] = [];
  /** The two-phase commit's messages (reserve, commit, reject), apart from the steps' requests. */
  readonly transactions: OutgoingRequest[] = [];
  listener: ResponseListener | undefined;
  /** `yes`: every service votes yes and acknowledges at once (the default); `manual`: the test answers them. */
  readonly #votes: 'yes' | 'manual';

  constructor(options: { transactions?: 'yes' | 'manual' } = {}) {
    this.#votes = options.transactions ?? 'yes';
  }

  attach(listener: ResponseListener): void {
    this.listener = listener;
  }

  send(request: OutgoingRequest): void {
    if (!isTransactionPhase(request.phase)) {
      this.requests.push(request);
      return;
    }
    this.transactions.push(request);
    if (this.#votes === 'yes') setImmediate(() => this.answer(request, 200, request.phase === 'reserve' ? { vote: 'yes' } : { ack: true }));
  }

  /** The last request sent to `target`. */
  last(target: string): OutgoingRequest {
    const found = [...this.requests].reverse().find((r) => r.target === target);
    if (!found) throw new Error(`no request to ${target} yet (sent: ${this.requests.map((r) => r.target).join(', ') || 'none'})`);
    return found;
  }

  /** Answers a request through the attached manager, as a participant would. */
  answer(request: OutgoingRequest, status: 200 | 400 | 500 = 200, content: JsonValue = {}): void {
    if (!this.listener) throw new Error('no manager attached');
    this.listener({ requestId: request.requestId, status, content, relatedServices: [] });
  }

  /** Delivers a response the way a transport does. */
  deliver(response: SagaResponseData): void {
    this.listener?.(response);
  }

  async close(): Promise<void> {}
}

/** Each step of an execution as `[path, status, compensated]`, in the order it lists them. */
export type Row = [path: string, status: string, compensated: boolean];
export const rows = (execution: SagaExecution): Row[] => execution.steps.map((s) => [s.path, s.status, s.compensated]);

/** A step's view, failing the test when the execution has no such step. */
export function stepOf(execution: SagaExecution, path: string) {
  const step = execution.steps.find((s) => s.path === path);
  if (!step) throw new Error(`no step ${path} in ${execution.steps.map((s) => s.path).join(', ')}`);
  return step;
}

/** A promise the test settles by hand: a participant that answers when told to. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A handler that never answers: the orchestrator sees a timeout. */
export const never = () => new Promise<never>(() => undefined);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const managers: SagaManager[] = [];
/** A manager that `closeManagers()` closes after the test, even when an assertion fails first. */
export function managerWith(options: ConstructorParameters<typeof SagaManager>[0]): SagaManager {
  const manager = new SagaManager(options);
  managers.push(manager);
  return manager;
}
/** Closes every manager made by `managerWith()`: use as `afterEach(closeManagers)`. */
export async function closeManagers(): Promise<void> {
  await Promise.all(managers.splice(0).map((m) => m.close()));
}
