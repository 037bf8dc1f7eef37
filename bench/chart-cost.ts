// What the statechart alone costs per saga, with no network, no store and no manager: the CPU time
// of driving the workload's saga (3 remote steps, 10% failing at step 3 and compensating 2 and 1)
// on four charts, 64 in flight, answers given at once in this process:
// - minimal: bench/lib/minimal-chart.ts with handlers sent in as events, no child actors;
// - + promise actors: each handler a promise actor invoked by its state (DESIGN.md §4);
// - + child machines: the wait for each response a child machine too (DESIGN.md §4);
// - sagachart: the chart compileSaga() builds, driven through createSagaActor();
// - sagachart on its table: the same chart run on its transition table (machines/table), as the
//   runtime runs it: the table's ratio to the actor on the same chart is the point of DESIGN §4.
// Usage: chart-cost.ts [--sagas N] [--chart <name prefix>]
import { parseArgs } from 'node:util';
import { compileDefinition } from '../machines/compile.js';
import type { SagaChartEffect } from '../machines/effects.js';
import type { TableEffect } from '../machines/table/state-table.js';
import type { HandlerInput, HandlerOutput } from '../machines/types.js';
import { createSagaActor, pendingWork } from '../src/index.js';
import { BENCH_SAGA } from './lib/bench-saga.js';
import { minimalChart, runMinimalSaga, type Data, type MinimalChartOptions } from './lib/minimal-chart.js';
import { failsAt3, initialState } from './lib/workload.js';

const { values } = parseArgs({ options: { sagas: { type: 'string', default: '3000' }, chart: { type: 'string' } } });
const SAGAS = Number(values.sagas);
const IN_FLIGHT = 64;
type Ending = 'finished' | 'compensated' | 'error';


/** One saga on sagachart's compiled chart: answer every request it lists, as a participant would. */
function runSagachart(data: Data, fail: boolean): Promise<Ending> {
  return new Promise((resolve) => {
    const actor = createSagaActor(BENCH_SAGA, { context: data });
    const answered = new Set<string>();
    actor.subscribe((snapshot) => {
      if (typeof snapshot.value === 'string' && snapshot.value !== 'created') {
        actor.stop();
        const undone = Object.values(snapshot.context.steps as Record<string, { compensated?: boolean }>).filter((s) => s.compensated).length;
        resolve(snapshot.value === 'finished' ? 'finished' : undone === 2 ? 'compensated' : 'error');
        return;
      }
      for (const r of pendingWork(snapshot).requests) {
        if (answered.has(r.requestId)) continue;
        answered.add(r.requestId);
        const status = r.step === 'ship' && fail ? 400 : 200;
        const response = { requestId: r.requestId, uuid: r.uuid, status, content: { ok: true }, relatedServices: [] };
        queueMicrotask(() => actor.send({ type: 'saga.response', step: r.step, phase: r.phase, attempt: r.attempt, response } as never));
      }
    });
    actor.start();
    actor.send({ type: 'saga.start' });
  });
}

/** The same saga on the chart's transition table: handlers run by the definition's runner, requests read from effects. */
function runOnTable(data: Data, fail: boolean): Promise<Ending> {
  const { table, runHandler } = compileDefinition(BENCH_SAGA);
  const { state, effects } = table.start({ uuid: `t-${data.i}`, data });
  const pump = (first: TableEffect[]): Array<Extract<SagaChartEffect, { kind: 'request' }>> => {
    const requests: Array<Extract<SagaChartEffect, { kind: 'request' }>> = [];
    for (let queue = first; queue.length; ) {
      const next: TableEffect[] = [];
      for (const e of queue) {
        if (e.type === 'task') next.push(...table.resolveTask(state, e.path, runHandler(e.input as HandlerInput) as HandlerOutput));
        else if (e.type === 'effect' && (e.effect as SagaChartEffect).kind === 'request') requests.push(e.effect as Extract<SagaChartEffect, { kind: 'request' }>);
      }
      queue = next;
    }
    return requests;
  };
  pump(effects);
  return new Promise((resolve) => {
    const answer = (requests: Array<Extract<SagaChartEffect, { kind: 'request' }>>) => {
      if (state.leaf.node.key === 'finished' || state.leaf.node.key === 'errored') {
        const undone = Object.values((state.context as { steps: Record<string, { compensated?: boolean }> }).steps).filter((s) => s.compensated).length;
        return resolve(state.leaf.node.key === 'finished' ? 'finished' : undone === 2 ? 'compensated' : 'error');
      }
      for (const { request: r } of requests) {
        const status = r.step === 'ship' && fail ? 400 : 200;
        const response = { requestId: r.requestId, status, content: { ok: true }, relatedServices: [] };
        queueMicrotask(() => answer(pump(table.send(state, { type: 'saga.response', step: r.step, phase: r.phase, attempt: r.attempt, response }))));
      }
    };
    answer(pump(table.send(state, { type: 'saga.start' })));
  });
}

const minimal = (options: MinimalChartOptions) => {
  const machine = minimalChart(options);
  return (data: Data, fail: boolean): Promise<Ending> =>
    runMinimalSaga(machine, data, options, { answer: async (r) => ((r.content as { step: string }).step === 'ship' && fail ? 400 : 200) });
};

const CHARTS: Array<{ name: string; run: (data: Data, fail: boolean) => Promise<Ending> }> = [
  { name: 'minimal', run: minimal({ handlers: 'events', remoteChildren: false }) },
  { name: '+ promise actors', run: minimal({ handlers: 'actors', remoteChildren: false }) },
  { name: '+ child machines', run: minimal({ handlers: 'actors', remoteChildren: true }) },
  { name: 'sagachart', run: runSagachart },
  { name: 'sagachart on its table', run: runOnTable },
];

async function measure(run: (data: Data, fail: boolean) => Promise<Ending>, count: number) {
  const endings = { finished: 0, compensated: 0, error: 0 };
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < count; i += IN_FLIGHT) {
    const batch = Array.from({ length: Math.min(IN_FLIGHT, count - i) }, (_, k) => {
      const fail = failsAt3(i + k, 0.1);
      return run({ ...initialState(i + k, fail), i: i + k, fail }, fail);
    });
    for (const e of await Promise.all(batch)) endings[e]++;
  }
  const cpu = process.cpuUsage(cpu0);
  return { cpuUsPerSaga: Math.round((cpu.user + cpu.system) / count), ...endings };
}

const rows: Array<{ chart: string; cpuUsPerSaga: number; finished: number; compensated: number; error: number }> = [];
for (const chart of CHARTS.filter((c) => !values.chart || c.name.startsWith(values.chart))) {
  await measure(chart.run, 500); // warm-up
  rows.push({ chart: chart.name, ...(await measure(chart.run, SAGAS)) });
}
const base = rows[0]!.cpuUsPerSaga;
console.log('\n| chart | CPU µs per saga | × minimal | finished | compensated | errors |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.chart} | ${r.cpuUsPerSaga} | ${(r.cpuUsPerSaga / base).toFixed(2)} | ${r.finished} | ${r.compensated} | ${r.error} |`);
const actor = rows.find((r) => r.chart === 'sagachart')?.cpuUsPerSaga;
const onTable = rows.find((r) => r.chart === 'sagachart on its table')?.cpuUsPerSaga;
if (actor && onTable) console.log(`\nthe table costs ${(onTable / actor).toFixed(2)}× the XState actor on the same chart (${onTable} against ${actor} µs per saga)`);
const result = { bench: 'chart-cost', sagas: SAGAS, inFlight: IN_FLIGHT, charts: rows, tableVsActor: actor && onTable ? +(onTable / actor).toFixed(3) : null };
console.log(JSON.stringify(result));
const expected = { finished: SAGAS - Math.floor(SAGAS / 10), compensated: Math.floor(SAGAS / 10) };
if (rows.some((r) => r.error || r.finished !== expected.finished || r.compensated !== expected.compensated)) {
  console.error('a chart ended a saga otherwise than expected: these figures are not results');
  process.exitCode = 1;
}
