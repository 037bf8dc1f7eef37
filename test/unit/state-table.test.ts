/**
 * The transition table refuses, when it is built, every chart feature outside the subset it
 * implements (naming the state), and refuses snapshots that do not fit its machine with a clear
 * error instead of running them wrongly.
 */
import { describe, expect, it } from 'vitest';
import { assign, createMachine, emit, fromPromise, log, raise, sendParent, setup, spawnChild, stopChild } from 'xstate';
import { and } from 'xstate';
import { StateTable } from '../../machines/table/state-table.js';
import { compileDefinition } from '../../machines/compile.js';
import { Saga, SagaChartUnsupportedError, SagaRequest } from '../../src/index.js';

function refusal(machine: object): SagaChartUnsupportedError {
  try {
    StateTable.of(machine);
  } catch (err) {
    if (err instanceof SagaChartUnsupportedError) return err;
    throw err;
  }
  throw new Error('the table accepted the machine');
}

describe('StateTable refuses what it does not implement, naming the state', () => {
  it.each([
    ['a parallel state', createMachine({ id: 'p', type: 'parallel', states: { a: {}, b: {} } }), 'p', 'parallel'],
    ['a history state', createMachine({ id: 'h', initial: 'a', states: { a: {}, hist: { type: 'history' } } }), 'h.hist', 'history'],
    ['a delayed transition', createMachine({ id: 'd', initial: 'a', states: { a: { after: { 100: 'b' } }, b: {} } }), 'd.a', 'delayed'],
    ['raise', createMachine({ id: 'r', initial: 'a', states: { a: { entry: raise({ type: 'x' }) } } }), 'r.a', 'raise'],
    ['emit', createMachine({ id: 'e', initial: 'a', states: { a: { on: { go: { actions: emit({ type: 'x' }) } } } } }), 'e.a', 'emit'],
    ['spawnChild', createMachine({ id: 's', initial: 'a', states: { a: { entry: spawnChild(fromPromise(async () => 1)) } } }), 's.a', 'spawnChild'],
    ['stopChild', createMachine({ id: 'sc', initial: 'a', states: { a: { entry: stopChild('x') } } }), 'sc.a', 'stopChild'],
    ['sendParent', createMachine({ id: 'sp', initial: 'a', states: { a: { entry: sendParent({ type: 'x' }) } } }), 'sp.a', 'sendParent'],
    ['log', createMachine({ id: 'l', initial: 'a', states: { a: { entry: log('x') } } }), 'l.a', 'log'],
    ['a custom action', createMachine({ id: 'c', initial: 'a', states: { a: { entry: () => undefined } } }), 'c.a', 'custom action'],
    ['a built-in guard', createMachine({ id: 'g', initial: 'a', states: { a: { on: { go: { guard: and([() => true]), target: 'b' } } }, b: {} } }), 'g.a', 'guard'],
    ['a wildcard event', createMachine({ id: 'w', initial: 'a', states: { a: { on: { '*': 'b' } }, b: {} } }), 'w.a', 'wildcard'],
    ['an inline invoke', createMachine({ id: 'i', initial: 'a', states: { a: { invoke: { src: fromPromise(async () => 1) } } } }), 'i.a', 'invoke'],
    ['a final state below the top', createMachine({ id: 'f', initial: 'a', states: { a: { initial: 'x', states: { x: { type: 'final' } } } } }), 'f.a.x', 'final state below'],
  ])('%s', (_what, machine, stateId, feature) => {
    const err = refusal(machine);
    expect(err.code).toBe('SAGA_CHART_UNSUPPORTED');
    expect(err.stateId).toBe(stateId);
    expect(err.feature).toContain(feature);
    expect(err.message).toContain(`#${stateId}`);
  });

  it('accepts what sagachart compiles, and an invoke of a registered machine', () => {
    const child = createMachine({ id: 'child', initial: 'w', states: { w: { on: { ok: 'done' } }, done: { type: 'final' } } });
    const machine = setup({ actors: { child } }).createMachine({
      id: 'parent',
      initial: 'a',
      context: { n: 0 },
      states: {
        a: {
          invoke: { id: 'c', src: 'child', onDone: { target: 'b', actions: assign({ n: ({ context }) => context.n + 1 }) } },
          on: { poke: { actions: [] } },
        },
        b: { type: 'final' },
      },
    });
    const table = StateTable.of(machine);
    const { state } = table.start(undefined);
    expect(table.persist(state).children['c']?.src).toBe('child');
  });
});

describe('StateTable.restore refuses snapshots that do not fit', () => {
  const saga = new Saga('fit')
    .remoteStep('r')
    .onExecute(() => new SagaRequest('svc.r', {}))
    .commit();
  const { table } = compileDefinition(saga);

  it.each([
    ['not an object', 'x', 'not an object'],
    ['a bad status', { status: 'stopped', value: 'created', context: {}, children: {} }, 'status'],
    ['no context', { status: 'active', value: 'created', children: {} }, 'context'],
    ['a state that does not exist', { status: 'active', value: { running: { nope: 'x' } }, context: {}, children: {} }, 'not a state'],
    ['a compound state as the value', { status: 'active', value: 'running', context: {}, children: {} }, 'not a state'],
    ['a prototype key as the value', { status: 'active', value: { constructor: 'x' }, context: {}, children: {} }, 'not a state'],
    ['a child of an unknown src', { status: 'active', value: 'created', context: {}, children: { x: { src: 'evil', snapshot: {} } } }, 'does not invoke'],
    ['a task child without a status', { status: 'active', value: 'created', context: {}, children: { x: { src: 'handler', snapshot: {} } } }, 'no status'],
  ])('%s', (_what, snapshot, message) => {
    expect(() => table.restore(snapshot)).toThrow(RangeError);
    expect(() => table.restore(snapshot)).toThrow(message);
  });
});
