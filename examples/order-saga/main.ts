// The order-saga demo: `npm start`. Runs a mix of orders through the order saga and prints a
// summary. Options: --orders N (default 40), --concurrency N (default 8).
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { InProcessBroker, SagaManager, type SagaExecution } from '../../src/index.js';
import { demoOrders } from './orders.js';
import { createServices, type LedgerEntry } from './participants.js';
import { ORDER_SAGA } from './saga.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '40' }, concurrency: { type: 'string', default: '8' } },
});
const count = Number(values.orders);
const concurrency = Number(values.concurrency);

const ledger: LedgerEntry[] = [];
const broker = new InProcessBroker();
for (const [service, handlers] of Object.entries(createServices((e) => ledger.push(e)))) broker.participant(service, handlers);
const manager = new SagaManager({ broker, sagas: [ORDER_SAGA] });

const orders = demoOrders(count);
const executions: SagaExecution[] = [];
const tty = process.stdout.isTTY === true;
const bar = tty ? new cliProgress.SingleBar({ format: 'orders {bar} {value}/{total} | {finished} finished, {errored} errored' }, cliProgress.Presets.shades_classic) : null;
const tally = { finished: 0, errored: 0 };
bar?.start(orders.length, 0, tally);
console.log(`Running ${orders.length} orders through saga ${ORDER_SAGA.id}, ${concurrency} at a time…`);

const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < orders.length) {
      const order = orders[next++]!;
      const execution = await manager.run(ORDER_SAGA, { context: order, raiseOnError: false });
      executions.push(execution);
      tally[execution.status === 'finished' ? 'finished' : 'errored']++;
      if (bar) bar.increment(1, tally);
      else if (executions.length % 10 === 0 || executions.length === orders.length) console.log(`  ${executions.length}/${orders.length} done`);
    }
  }),
);
bar?.stop();
await manager.close();

const byStatus: Record<string, number> = {};
for (const e of executions) byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
const byCause: Record<string, number> = {};
for (const e of executions) if (e.error) byCause[`${e.error.step}: ${e.error.code}`] = (byCause[`${e.error.step}: ${e.error.code}`] ?? 0) + 1;

function story(execution: SagaExecution) {
  const lines = ledger.filter((l) => l.requestId.startsWith(`${execution.uuid}/`)).map((l) => `${l.service}.${l.action}`);
  return {
    orderId: String(execution.context.orderId),
    uuid: execution.uuid,
    error: execution.error,
    steps: execution.steps.map((s) => ({ step: s.path, status: s.status, compensated: s.compensated })),
    participants: lines,
  };
}
const declined = executions.find((e) => e.error?.step === 'charge');
const timedOut = executions.find((e) => e.error?.code === 'SAGA_STEP_TIMEOUT');

console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
console.log('\nExecutions by status:');
for (const [status, n] of Object.entries(byStatus)) console.log(`  ${status.padEnd(9)} ${n}`);
console.log('Failures by step and cause:');
for (const [cause, n] of Object.entries(byCause)) console.log(`  ${cause.padEnd(44)} ${n}`);
for (const [title, e] of [
  ['A declined order', declined],
  ['The order whose courier never answered', timedOut],
] as const) {
  if (!e) continue;
  const s = story(e);
  console.log(`\n${title}: ${s.orderId} (${s.uuid})\n  failed at ${s.error?.step}: ${s.error?.code} — ${s.error?.message}`);
  for (const step of s.steps) console.log(`  ${step.step.padEnd(36)} ${step.status}${step.compensated ? ', compensated' : ''}`);
  console.log(`  participants saw, in order: ${s.participants.join(' → ')}`);
}
console.log(
  `\nSUMMARY ${JSON.stringify({ orders: orders.length, byStatus, byCause, declined: declined ? story(declined) : null, timedOut: timedOut ? story(timedOut) : null })}`,
);
