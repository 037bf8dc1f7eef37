import { expect, it } from 'vitest';
import { Saga, sagaDiagram, SagaRequest } from '../../src/index.js';

function diagrammed() {
  const express = new Saga('express').remoteStep('book-courier').onExecute(() => new SagaRequest('shipping.express', {})).commit();
  const standard = new Saga('standard').localStep('queue').onExecute(() => undefined).commit();
  const saga = new Saga('diagrammed')
    .localStep('validate')
    .onExecute(() => undefined)
    .remoteStep('reserve')
    .onExecute(() => new SagaRequest('inventory.reserve', {}))
    .onFailure(() => new SagaRequest('inventory.release', {}))
    .timeout(5000)
    .retry({ attempts: 3, backoffMs: 100 })
    .conditionalStep('shipping')
    .ifThen(() => true, express)
    .elseThen(standard)
    .commit();
  return saga;
}

it('renders an overview with one box per step, in order, branches nested', () => {
  const saga = diagrammed();
  const text = sagaDiagram(saga, { detail: 'steps' });
  const lines = text.split('\n');
  expect(lines[0]).toBe('stateDiagram-v2');
  expect(text).toContain(`%% diagrammed@${saga.hash}`);
  expect(text).toContain('state "reserve · remote · timeout 5000 ms · 3 attempts · compensable" as s_reserve');
  expect(lines.indexOf('    s_validate --> s_reserve')).toBeGreaterThan(0);
  expect(lines.indexOf('    s_reserve --> s_shipping')).toBeGreaterThan(0);
  expect(text).toMatch(/state "express" as s_shipping__express \{\n\s+state "book-courier · remote" as s_shipping_express_book_courier/);
  expect(text).toContain('s_shipping_choice --> s_shipping__standard: else');
  expect(text).toContain('running --> compensating: a step fails');
});

it('renders the compiled machine itself: every status a sub-state, cross-step transitions lifted', () => {
  const saga = diagrammed();
  const text = sagaDiagram(saga);
  const lines = text.split('\n');
  const label = (key: string) => new RegExp(`state "${key}( \\[[^\\]]*\\])?( ⇢ [^"]*)?" as n\\d+`);
  expect(lines[0]).toBe('stateDiagram-v2');
  // reserve is remote with onFailure: all its statuses are states of the chart.
  const reserve = text.slice(text.indexOf('state "reserve" as'), text.indexOf('state "shipping" as'));
  for (const status of [
    'created',
    'running-on-execute',
    'errored-on-execute',
    'finished-on-execute',
    'paused-by-on-execute',
    'errored-by-on-execute',
    'finished',
    'running-on-failure',
    'paused-on-failure',
    'errored-on-failure',
  ]) {
    expect(reserve, status).toMatch(label(status));
  }
  expect(reserve).toContain('paused-by-on-execute [paused] ⇢ remoteStep');
  // Branch steps nest inside the conditional step, inside its branch.
  expect(text).toMatch(/state "running-on-success" as n\d+ \{\n\s+state "express" as n\d+ \{\n\s+state "book-courier" as/);
  // A failure of the conditional step rolls back into reserve's compensation.
  expect(text).toMatch(/n\d+ --> n\d+: errored-on-execute → compensate/);
  expect(text).toContain('saga.start');
  expect(text).toContain('saga.retry-compensation');
  // Every transition arrow joins two declared states.
  const declared = new Set([...text.matchAll(/ as (n\d+)/g)].map((m) => m[1]));
  for (const [, from, to] of text.matchAll(/(n\d+|\[\*\]) --> (n\d+|\[\*\])/g)) {
    if (from !== '[*]') expect(declared.has(from)).toBe(true);
    if (to !== '[*]') expect(declared.has(to)).toBe(true);
  }
});
