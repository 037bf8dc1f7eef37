import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { createHandlerActor, handlerRunner } from '../../machines/handler-actor.js';
import type { HandlerHook, HandlerInput, HandlerOutput } from '../../machines/types.js';
import { Saga, SagaRequest } from '../../src/index.js';
import type { SagaStep } from '../../src/definition/steps.js';

type Handler = (ctx: Record<string, unknown>) => unknown;

/** A one-step saga whose local step runs `handler`, and the handler actor over it. */
function logicFor(handler: Handler) {
  const saga = new Saga('handler-actor').localStep('only').onExecute(handler as never).commit();
  return createHandlerActor(handlerRunner(new Map<string, SagaStep>(saga.steps.map((s) => [s.name, s]))));
}

function start(logic: ReturnType<typeof createHandlerActor>, input: Partial<HandlerInput> = {}) {
  const actor = createActor(logic, { input: { step: 'only', hook: 'onExecute' as HandlerHook, data: { n: 1 }, ...input } });
  actor.start();
  return actor;
}

function outputOf(actor: ReturnType<typeof start>): Promise<HandlerOutput> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const s = actor.getSnapshot();
      if (s.status === 'done') resolve(s.output!);
      else if (s.status !== 'active') reject(new Error(`handler actor ended ${s.status}`));
    };
    actor.subscribe({ next: check, error: reject, complete: check });
    check();
  });
}

describe('the handler actor', () => {
  it('resolves a synchronous handler before any promise job runs', () => {
    const actor = start(logicFor((ctx) => void (ctx.n = 2)));
    const snapshot = actor.getSnapshot();
    expect(snapshot.status).toBe('done');
    expect(snapshot.output).toEqual({ ok: true, data: { n: 2 } });
  });

  it('awaits an asynchronous handler', async () => {
    const actor = start(logicFor(async (ctx) => void (ctx.n = (ctx.n as number) + 41)));
    expect(actor.getSnapshot().status).toBe('active');
    expect(await outputOf(actor)).toEqual({ ok: true, data: { n: 42 } });
  });

  it.each([
    ['throws', () => () => {
      throw new Error('sync boom');
    }, 'sync boom'],
    ['rejects', () => async () => {
      throw new Error('async boom');
    }, 'async boom'],
    ['returns an Error', () => () => new Error('returned boom'), 'returned boom'],
    ['resolves to an Error', () => async () => new Error('resolved boom'), 'resolved boom'],
  ])('turns a handler that %s into a failure, keeping the data it was given', async (_how, make, message) => {
    const output = await outputOf(start(logicFor(make())));
    expect(output).toEqual({ ok: false, data: { n: 1 }, error: { code: 'SAGA_HANDLER_FAILED', message } });
  });

  it.each([
    ['synchronous', (ctx: Record<string, unknown>) => void (ctx.big = 10n)],
    ['asynchronous', async (ctx: Record<string, unknown>) => void (ctx.big = 10n)],
  ])('fails with SAGA_CONTEXT_NOT_JSON when a %s handler leaves a context JSON cannot hold', async (_how, handler) => {
    const output = await outputOf(start(logicFor(handler)));
    expect(output.ok).toBe(false);
    expect(output.ok ? null : output.error.code).toBe('SAGA_CONTEXT_NOT_JSON');
    expect(output.data).toEqual({ n: 1 });
  });

  it('does not touch the data of the snapshot it was started with', () => {
    const data = { n: 1, list: [1] };
    const actor = start(logicFor((ctx) => void (ctx.list as number[]).push(2)), { data });
    expect(actor.getSnapshot().output).toEqual({ ok: true, data: { n: 1, list: [1, 2] } });
    expect(data).toEqual({ n: 1, list: [1] });
  });

  it('builds the request of a remote step, with a copy of its content', () => {
    const content = { items: ['a'] };
    const saga = new Saga('handler-actor-remote').remoteStep('reserve').onExecute(() => new SagaRequest('inventory.reserve', content)).commit();
    const logic = createHandlerActor(handlerRunner(new Map<string, SagaStep>(saga.steps.map((s) => [s.name, s]))));
    const actor = start(logic, { step: 'reserve' });
    const output = actor.getSnapshot().output!;
    expect(output).toEqual({ ok: true, data: { n: 1 }, request: { target: 'inventory.reserve', content: { items: ['a'] } } });
    content.items.push('b');
    expect(output.ok && output.request?.content).toEqual({ items: ['a'] });
  });

  it('evaluates conditions in order, awaiting async ones, and reports a throwing condition as a failure', async () => {
    const conditional = (name: string, conditions: Array<(ctx: Record<string, unknown>) => unknown>) => {
      const step = new Saga(name).conditionalStep('pick');
      conditions.forEach((c, i) => step.ifThen(c as never, new Saga(`branch-${i + 1}`).localStep('noop').onExecute(() => undefined).commit()));
      const saga = step.commit();
      return createHandlerActor(handlerRunner(new Map<string, SagaStep>(saga.steps.map((s) => [s.name, s]))));
    };
    const chosen = async (logic: ReturnType<typeof createHandlerActor>) => {
      const output = await outputOf(start(logic, { step: 'pick', hook: 'condition' }));
      return output.ok ? output.branch : output.error.message;
    };
    expect(await chosen(conditional('second', [async () => false, (ctx) => ctx.n === 1, () => true]))).toBe('branch-2');
    expect(await chosen(conditional('first-sync', [(ctx) => ctx.n === 1, async () => true]))).toBe('branch-1');
    expect(await chosen(conditional('none', [() => false, async () => false]))).toBeNull();
    expect(
      await chosen(
        conditional('throwing', [
          async () => false,
          () => {
            throw new Error('condition broke');
          },
        ]),
      ),
    ).toBe('condition broke');
  });

  // Driven through the logic itself, not an XState actor: an actor drops events once it is
  // stopped, which would hide a logic that lets a late resolution through.
  describe('stays stopped when stopped before its handler settles', () => {
    type Logic = ReturnType<typeof createHandlerActor>;
    type Snapshot = ReturnType<Logic['transition']>;
    type Event = Parameters<Logic['transition']>[1];

    /** A stand-in for XState's actor scope: `send` runs the logic's own transition, unguarded. */
    function fakeScope(logic: Logic, input: HandlerInput) {
      const sent: Event[] = [];
      const scope = {
        snapshot: logic.getInitialSnapshot(undefined as never, input) as Snapshot,
        sent,
        self: {
          getSnapshot: () => scope.snapshot,
          send: (event: Event) => {
            sent.push(event);
            scope.snapshot = logic.transition(scope.snapshot, event, scope as never);
          },
        },
      };
      return scope;
    }
    const input: HandlerInput = { step: 'only', hook: 'onExecute', data: { n: 1 } };

    it('ignores the resolution of a handler that settles after the stop', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let ran = 0;
      const logic = logicFor(async (ctx) => {
        ran++;
        await gate;
        ctx.n = 2;
      });
      const scope = fakeScope(logic, input);
      logic.start!(scope.snapshot, scope as never);
      expect(ran).toBe(1);
      expect(scope.snapshot.status).toBe('active');
      scope.snapshot = logic.transition(scope.snapshot, { type: 'xstate.stop' }, scope as never);
      expect(scope.snapshot.status).toBe('stopped');
      release();
      await gate;
      await new Promise((r) => setImmediate(r));
      expect(scope.sent).toEqual([]);
      expect(scope.snapshot).toMatchObject({ status: 'stopped', output: undefined });
    });

    it('keeps a stopped or done snapshot as it is whatever event comes', () => {
      // The event a resolution sends, captured from a synchronous handler.
      const logic = logicFor((ctx) => void (ctx.n = 3));
      const scope = fakeScope(logic, input);
      logic.start!(scope.snapshot, scope as never);
      expect(scope.snapshot).toMatchObject({ status: 'done', output: { ok: true, data: { n: 3 } } });
      const resolved = scope.sent[0]!;
      expect(scope.sent).toHaveLength(1);

      const active = logic.getInitialSnapshot(undefined as never, input);
      const stopped = logic.transition(active, { type: 'xstate.stop' }, scope as never);
      expect(stopped.status).toBe('stopped');
      expect(logic.transition(stopped, resolved, scope as never)).toBe(stopped);
      const done = scope.snapshot;
      const again = { ...resolved, output: { ok: false, data: {}, error: { code: 'X', message: 'late' } } };
      expect(logic.transition(done, again, scope as never)).toBe(done);
      expect(logic.transition(done, { type: 'xstate.stop' }, scope as never)).toBe(done);
    });

    it('does not run the handler of a snapshot that is no longer active', () => {
      let ran = 0;
      const logic = logicFor(() => void ran++);
      const scope = fakeScope(logic, input);
      scope.snapshot = logic.transition(scope.snapshot, { type: 'xstate.stop' }, scope as never);
      logic.start!(scope.snapshot, scope as never);
      expect(ran).toBe(0);
      expect(scope.sent).toEqual([]);
    });
  });
});
