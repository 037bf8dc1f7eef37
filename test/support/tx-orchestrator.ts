// The orchestrator of the crash tests of test/integration/websocket-transactions.test.ts, in a
// child process that kills itself (SIGKILL) at an exact point of the two-phase commit and is
// started again. Configured by env:
//   PORT (the same on every start), TOKENS (JSON: a token per service), REDIS_URL, KEY_PREFIX
//   RUN_UUID, PLAN (JSON)  start TX_CRASH_SAGA with this uuid and plan, unless it is stored already
//   KILL=<phase>:<n>       SIGKILL when the n-th message of the phase (reserve, commit, reject) is
//                          about to be sent. For n > 1 the n-th and later messages are held back and
//                          the kill waits until a message sent before them has been answered, so that
//                          it was really sent (and carried out) while the others were not.
//   WAIT=1                 print FINAL once the execution of RUN_UUID is finished or errored
// stdout, machine-readable:
//   READY {"port","pid"}   the broker listens (recovery has not run yet)
//   RECOVERED {report}     recover() is done
//   SENT {"phase","service","requestId","attempt"}   a message of the two-phase commit went to the broker
//   KILLING {"phase","n","sentBefore"}                 the kill is next
//   FINAL {execution}      the execution ended (its toJSON())
import {
  RedisSagaRepository,
  SagaManager,
  WebSocketBroker,
  isTransactionPhase,
  type OutgoingRequest,
  type ResponseListener,
  type SagaBroker,
  type SagaLogger,
} from '../../src/index.js';
import { TX_CRASH_SAGA, type TxPlan } from './tx-saga.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    console.error(`tx-orchestrator: ${name} is required`);
    process.exit(2);
  }
  return value;
};
const out = (tag: string, data: object) => process.stdout.write(`${tag} ${JSON.stringify(data)}\n`);
const logger: SagaLogger = {
  warn: (message, fields) => console.error(`[tx-orchestrator ${process.pid}] WARN ${message}`, JSON.stringify(fields ?? {})),
  error: (message, fields) => console.error(`[tx-orchestrator ${process.pid}] ERROR ${message}`, JSON.stringify(fields ?? {})),
};

/**
 * Delegates to the WebSocket broker and dies at the configured message. stdout to a pipe is
 * synchronous on Linux, so what is printed before the kill reaches the test.
 */
class KillingBroker implements SagaBroker {
  readonly #inner: SagaBroker;
  readonly #phase: string | null;
  readonly #at: number;
  #count = 0;
  #armed = false;
  /** Messages of the phase sent before the kill point, and those of them answered. */
  readonly #sentBefore = new Set<string>();
  readonly #answered = new Set<string>();

  constructor(inner: SagaBroker, kill: string | undefined) {
    this.#inner = inner;
    const [phase, n] = (kill ?? '').split(':');
    this.#phase = kill ? phase! : null;
    this.#at = Number(n ?? 0);
    if (kill && (!isTransactionPhase(phase as never) || !(this.#at >= 1))) throw new Error(`KILL must be <reserve|commit|reject>:<n>, got ${kill}`);
  }

  attach(listener: ResponseListener): void {
    this.#inner.attach((response) => {
      this.#answered.add(response.requestId);
      // The answer reached the orchestrator: the message was sent and carried out. Die before the manager takes it.
      if (this.#armed && this.#sentBefore.has(response.requestId)) this.#kill();
      listener(response);
    });
  }

  send(request: OutgoingRequest): void {
    if (this.#armed) return; // held back: never sent by this life
    if (isTransactionPhase(request.phase) && request.phase === this.#phase) {
      this.#count++;
      if (this.#count === this.#at) {
        this.#armed = true;
        if (this.#at === 1 || [...this.#sentBefore].some((id) => this.#answered.has(id))) this.#kill();
        return;
      }
      this.#sentBefore.add(request.requestId);
    }
    if (isTransactionPhase(request.phase)) out('SENT', { phase: request.phase, service: request.target, requestId: request.requestId, attempt: request.attempt });
    this.#inner.send(request);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #kill(): void {
    out('KILLING', { phase: this.#phase, n: this.#at, sentBefore: [...this.#sentBefore] });
    process.kill(process.pid, 'SIGKILL');
  }
}

const port = Number(env('PORT'));
const tokens = JSON.parse(env('TOKENS')) as Record<string, string>;
const repository = new RedisSagaRepository({ redis: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX'), logger });
const ws = await WebSocketBroker.listen({ port, auth: tokens, logger });
const broker = new KillingBroker(ws, process.env.KILL);
const manager = new SagaManager({ repository, broker, sagas: [TX_CRASH_SAGA], logger, recoverIntervalMs: 0 });
out('READY', { port: ws.port, pid: process.pid });

let closing = false;
const shutdown = async (code: number) => {
  if (closing) return;
  closing = true;
  await manager.close();
  await broker.close();
  await repository.close();
  process.exit(code);
};
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

async function main(): Promise<void> {
  out('RECOVERED', await manager.recover());
  const uuid = process.env.RUN_UUID;
  if (!uuid) return;
  if (!(await repository.load(uuid))) {
    const plan = JSON.parse(process.env.PLAN ?? '{}') as TxPlan;
    await manager.run(TX_CRASH_SAGA, { uuid, context: { order: uuid, plan }, pauseOnDisk: true });
  }
  if (process.env.WAIT === '1') out('FINAL', (await manager.waitFor(uuid)).toJSON());
}

main().catch((err: unknown) => {
  if (closing) return;
  logger.error?.('the orchestrator failed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
