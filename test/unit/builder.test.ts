import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { z } from 'zod';
import {
  compileSaga,
  DuplicateStepNameError,
  EmptySagaError,
  InvalidSagaDefinitionError,
  Saga,
  SagaAlreadyCommittedError,
  SagaHookAlreadySetError,
  SagaManager,
  SagaNotCommittedError,
  SagaRequest,
  UndefinedOnExecuteError,
} from '../../src/index.js';

const noop = () => undefined;

describe('Saga builder', () => {
  it('chains steps fluently and names them step-1, step-2, … by default', () => {
    const sub = new Saga('sub').localStep().onExecute(noop).commit();
    const saga = new Saga('order')
      .localStep()
      .onExecute(noop)
      .remoteStep()
      .onExecute(() => new SagaRequest('a.b', {}))
      .conditionalStep()
      .ifThen(() => true, sub)
      .localStep('named')
      .onExecute(noop)
      .commit();
    expect(saga.steps.map((s) => [s.name, s.kind])).toEqual([
      ['step-1', 'local'],
      ['step-2', 'remote'],
      ['step-3', 'conditional'],
      ['named', 'local'],
    ]);
    expect(saga.committed).toBe(true);
  });

  it('commit(cb) adds a final local step named commit', () => {
    const saga = new Saga('x').localStep('a').onExecute(noop).commit(noop);
    expect(saga.steps.map((s) => s.name)).toEqual(['a', 'commit']);
  });

  it.each([
    ['an empty saga', () => new Saga('empty').commit(), EmptySagaError, 'SAGA_EMPTY'],
    ['a step without onExecute', () => new Saga('x').localStep('a').onFailure(noop).commit(), UndefinedOnExecuteError, 'SAGA_UNDEFINED_ON_EXECUTE'],
    ['a remote step without onExecute', () => new Saga('x').remoteStep('a').commit(), UndefinedOnExecuteError, 'SAGA_UNDEFINED_ON_EXECUTE'],
    ['onExecute set twice', () => new Saga('x').localStep('a').onExecute(noop).onExecute(noop), SagaHookAlreadySetError, 'SAGA_HOOK_ALREADY_SET'],
    ['onFailure set twice', () => new Saga('x').localStep('a').onFailure(noop).onFailure(noop), SagaHookAlreadySetError, 'SAGA_HOOK_ALREADY_SET'],
    ['onSuccess set twice', () => new Saga('x').remoteStep('a').onSuccess(noop).onSuccess(noop), SagaHookAlreadySetError, 'SAGA_HOOK_ALREADY_SET'],
    ['onError set twice', () => new Saga('x').remoteStep('a').onError(noop).onError(noop), SagaHookAlreadySetError, 'SAGA_HOOK_ALREADY_SET'],
    ['timeout set twice', () => new Saga('x').remoteStep('a').timeout(1).timeout(2), SagaHookAlreadySetError, 'SAGA_HOOK_ALREADY_SET'],
    [
      'elseThen set twice',
      () => {
        const sub = new Saga('s').localStep().onExecute(noop).commit();
        return new Saga('x').conditionalStep('c').elseThen(sub).elseThen(sub);
      },
      SagaHookAlreadySetError,
      'SAGA_HOOK_ALREADY_SET',
    ],
    ['a duplicate step name', () => new Saga('x').localStep('a').onExecute(noop).localStep('a'), DuplicateStepNameError, 'SAGA_DUPLICATE_STEP_NAME'],
    ['a step name with a dot', () => new Saga('x').localStep('a.b'), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['a reserved step name', () => new Saga('x').localStep('awaiting-commit'), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['a saga without a name', () => new Saga(''), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['a negative timeout', () => new Saga('x').remoteStep('a').timeout(-5), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['zero retry attempts', () => new Saga('x').remoteStep('a').retry({ attempts: 0 }), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['a conditional step without branches', () => new Saga('x').conditionalStep('c').commit(), InvalidSagaDefinitionError, 'SAGA_INVALID_DEFINITION'],
    ['an uncommitted branch', () => new Saga('x').conditionalStep('c').ifThen(() => true, new Saga('sub')), SagaNotCommittedError, 'SAGA_NOT_COMMITTED'],
    ['a step added after commit', () => new Saga('x').localStep('a').onExecute(noop).commit().localStep('b'), SagaAlreadyCommittedError, 'SAGA_ALREADY_COMMITTED'],
    [
      'a hook set after commit',
      () => {
        const step = new Saga('x').localStep('a').onExecute(noop);
        step.commit();
        step.onFailure(noop);
      },
      SagaAlreadyCommittedError,
      'SAGA_ALREADY_COMMITTED',
    ],
    ['commit twice', () => new Saga('x').localStep('a').onExecute(noop).commit().commit(), SagaAlreadyCommittedError, 'SAGA_ALREADY_COMMITTED'],
  ])('rejects %s with a coded error that names the problem', (_what, build, errorClass, code) => {
    let thrown: unknown;
    try {
      build();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(errorClass);
    expect((thrown as { code: string }).code).toBe(code);
    expect((thrown as Error).message).toMatch(/"|'/); // names the saga, step or value
  });

  it('refuses to run or compile an uncommitted saga', async () => {
    const draft = new Saga('draft2');
    draft.localStep('a').onExecute(noop);
    expect(() => compileSaga(draft)).toThrow(SagaNotCommittedError);
    const manager = new SagaManager();
    await expect(manager.run(draft)).rejects.toMatchObject({ code: 'SAGA_NOT_COMMITTED' });
    await manager.close();
  });

  it('hashes the structure: same shape same id, another shape another id, handler code not included', () => {
    const make = (fn: () => void, extra = false) => {
      const s = new Saga('shape').localStep('a').onExecute(fn);
      if (extra) s.onFailure(fn);
      return s.commit();
    };
    const a = make(() => undefined);
    const b = make(() => {
      console.log('different code');
    });
    const c = make(noop, true);
    expect(a.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).not.toBe(a.hash);
    expect(compileSaga(a).id).toBe(`shape@${a.hash}`);
  });

  it('compileSaga returns the XState machine itself: createActor runs it to the end', () => {
    const saga = new Saga('plain')
      .localStep('a')
      .onExecute((ctx) => {
        ctx.done = true;
      })
      .commit();
    const actor = createActor(compileSaga(saga), { input: { uuid: 'u-plain', data: { n: 1 } } }).start();
    actor.send({ type: 'saga.start' });
    const snapshot = actor.getSnapshot();
    expect(snapshot.status).toBe('done');
    expect(snapshot.value).toBe('finished');
    expect(snapshot.context.data).toEqual({ n: 1, done: true });
  });

  it('types handlers by the zod schema of the context', () => {
    const schema = z.object({ orderId: z.string(), total: z.number() });
    const saga = new Saga('typed', { context: schema })
      .localStep('a')
      .onExecute((ctx) => {
        const id: string = ctx.orderId;
        ctx.total = id.length;
      })
      .commit();
    expect(saga.schema).toBe(schema);
  });
});
