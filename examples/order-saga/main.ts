// The order-saga demo: `npm start`. An orchestrator (this process) and three participant
// services (payment, inventory, shipping), each its own process, talking over WebSocket. Runs a
// mix of orders and prints a summary. Options: --orders N (default 40), --concurrency N (default 8),
// --stay (keep the orchestrator and its dashboard up after the orders, until Ctrl-C).
// Executions are stored in .sagachart/order-saga (FileSagaRepository), or in Redis when REDIS_URL
// is set; a run that was killed carries on at the next start (recover()). The admin API and the
// dashboard are served on the broker's port at /admin/, with the token SAGACHART_ADMIN_TOKEN (or
// one made up at start), both printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import {
  AdminApi,
  FileSagaRepository,
  InspectionStream,
  RedisSagaRepository,
  SagaManager,
  WebSocketBroker,
  type SagaExecution,
  type SagaRepository,
} from '../../src/index.js';
import { demoOrders } from './orders.js';
import type { LedgerEntry } from './participants.js';
import { ORDER_SAGA } from './saga.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '40' }, concurrency: { type: 'string', default: '8' }, stay: { type: 'boolean', default: false } },
});
const count = Number(values.orders);
const concurrency = Number(values.concurrency);
const SERVICES = ['inventory', 'payment', 'shipping'] as const;

// The orchestrator: a WebSocket endpoint with a fresh token per service, and the saga manager.
const tokens = Object.fromEntries(SERVICES.map((s) => [s, randomBytes(16).toString('hex')]));
const logger = { error: (message: string, fields?: object) => console.error(message, fields ?? '') };
const HOUR = 3_600_000;
const repository: SagaRepository = process.env.REDIS_URL
  ? new RedisSagaRepository({ redis: process.env.REDIS_URL, keyPrefix: 'sagachart-demo:', retentionMs: HOUR, logger })
  : await FileSagaRepository.open({ dir: process.env.SAGACHART_DEMO_DIR ?? fileURLToPath(new URL('../../.sagachart/order-saga', import.meta.url)), retentionMs: HOUR, logger });
const broker = await WebSocketBroker.listen({ port: 0, auth: tokens, logger });
// The dashboard's inspector panel shows the executions' inspection events as they happen.
const inspection = new InspectionStream();
const manager = new SagaManager({ repository, broker, sagas: [ORDER_SAGA], logger, inspect: inspection.inspect });
const adminToken = process.env.SAGACHART_ADMIN_TOKEN ?? randomBytes(16).toString('hex');
const admin = AdminApi.attach(broker.server, { manager, broker, token: adminToken, inspection, logger });
console.log(
  `Orchestrator listening on ${broker.url}, storing executions in ${process.env.REDIS_URL ? `Redis (${process.env.REDIS_URL})` : '.sagachart/order-saga'}; starting ${SERVICES.join(', ')} as separate processes…`,
);
console.log(`Dashboard at ${new URL('/admin/', broker.url.replace(/^ws/, 'http')).href} (operator token: ${adminToken})`);

// The participants: one process each; their ledgers come back on stdout.
const ledger: LedgerEntry[] = [];
const children: ChildProcess[] = SERVICES.map((service) => {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./participant.ts', import.meta.url)), service], {
    env: { ...process.env, SAGACHART_URL: broker.url, SAGACHART_TOKEN: tokens[service] },
    // stdin is a pipe the participant watches: it closes when this process dies, even by kill -9.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('LEDGER ')) ledger.push(JSON.parse(line.slice(7)) as LedgerEntry);
  });
  return child;
});
console.log(`PARTICIPANTS ${children.map((c) => c.pid).join(',')}`);
const startedWaiting = Date.now();
while (broker.connectedServices().length < SERVICES.length) {
  if (Date.now() - startedWaiting > 30_000) throw new Error(`participants did not connect: only ${broker.connectedServices().join(', ')}`);
  await new Promise((r) => setTimeout(r, 20));
}

// Executions left by a run that was killed carry on now that the participants are back.
const recovery = await manager.recover();
if (recovery.recovered) console.log(`Recovered ${recovery.recovered} executions of an earlier run (${recovery.resent} requests sent again).`);

const orders = demoOrders(count);
const executions: SagaExecution[] = [];
const tally = { finished: 0, errored: 0 };
const bar = process.stdout.isTTY
  ? new cliProgress.SingleBar({ format: 'orders {bar} {value}/{total} | {finished} finished, {errored} errored' }, cliProgress.Presets.shades_classic)
  : null;
console.log(`Running ${orders.length} orders through saga ${ORDER_SAGA.id}, ${concurrency} at a time…`);
bar?.start(orders.length, 0, tally);
const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < orders.length) {
      const execution = await manager.run(ORDER_SAGA, { context: orders[next++]!, raiseOnError: false });
      executions.push(execution);
      tally[execution.status === 'finished' ? 'finished' : 'errored']++;
      if (bar) bar.increment(1, tally);
      else if (executions.length % 10 === 0 || executions.length === orders.length) console.log(`  ${executions.length}/${orders.length} done`);
    }
  }),
);
bar?.stop();
const elapsed = (Date.now() - started) / 1000;

if (values.stay) {
  console.log('The orders are done; the orchestrator and its dashboard stay up. Press Ctrl-C for the summary.');
  await new Promise((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
}
await admin.close();
await manager.close();
await repository.close();
// Ctrl-C reaches the participants too: one that has exited already is not waited for.
await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => c.once('exit', resolve).kill('SIGTERM')))));
await broker.close();

const countBy = (key: (e: SagaExecution) => string | null) => {
  const out: Record<string, number> = {};
  for (const e of executions) {
    const k = key(e);
    if (k !== null) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};
const byStatus = countBy((e) => e.status);
const byCause = countBy((e) => (e.error ? `${e.error.step ?? 'two-phase commit'}: ${e.error.code}` : null));

function story(execution: SagaExecution) {
  return {
    orderId: String(execution.context.orderId),
    uuid: execution.uuid,
    error: execution.error,
    steps: execution.steps.map((s) => ({ step: s.path, status: s.status, compensated: s.compensated })),
    participants: ledger.filter((l) => l.requestId.startsWith(`${execution.uuid}/`)).map((l) => `${l.service}.${l.action}`),
  };
}
const declined = executions.find((e) => e.error?.step === 'charge');
const timedOut = executions.find((e) => e.error?.code === 'SAGA_STEP_TIMEOUT');
const refusedCommit = executions.find((e) => e.error?.code === 'SAGA_COMMIT_FAILED');
const committed = executions.find((e) => e.status === 'finished');

console.log(`\nDone in ${elapsed.toFixed(1)} s (${(orders.length / elapsed).toFixed(0)} sagas/s).`);
console.log('\nExecutions by status:');
for (const [status, n] of Object.entries(byStatus)) console.log(`  ${status.padEnd(9)} ${n}`);
console.log('Failures by step and cause:');
for (const [cause, n] of Object.entries(byCause)) console.log(`  ${cause.padEnd(56)} ${n}`);
for (const [title, e] of [
  ['A declined order', declined],
  ['The order whose courier never answered', timedOut],
  ['The order inventory would not commit', refusedCommit],
  ['A committed order', committed],
] as const) {
  if (!e) continue;
  const s = story(e);
  console.log(`\n${title}: ${s.orderId} (${s.uuid})${s.error ? `\n  failed at ${s.error.step ?? 'the two-phase commit'}: ${s.error.code} — ${s.error.message}` : ''}`);
  for (const step of s.steps) console.log(`  ${step.step.padEnd(40)} ${step.status}${step.compensated ? ', compensated' : ''}`);
  console.log(`  participants applied, in order: ${s.participants.join(' → ')}`);
}
console.log(
  `\nSUMMARY ${JSON.stringify({
    orders: orders.length,
    byStatus,
    byCause,
    declined: declined ? story(declined) : null,
    timedOut: timedOut ? story(timedOut) : null,
    refusedCommit: refusedCommit ? story(refusedCommit) : null,
    committed: committed ? story(committed) : null,
  })}`,
);
