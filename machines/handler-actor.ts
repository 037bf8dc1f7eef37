import type { PromiseActorLogic } from 'xstate';
import { contextOver, SagaContext, storedDataOf } from '../src/context.js';
import type { SagaCallbacks } from '../src/definition/saga.js';
import type { ConditionalSagaStep, SagaStep } from '../src/definition/steps.js';
import { cloneJson, toErrorInfo, type ErrorInfo, type JsonObject } from '../src/json.js';
import { SagaRequest } from '../src/messages/saga-request.js';
import { SagaResponse } from '../src/messages/saga-response.js';
import { SAGA_CALLBACK_STEP, type HandlerInput, type HandlerOutput } from './types.js';

const HANDLER_FAILED = 'SAGA_HANDLER_FAILED';

function contextData(ctx: SagaContext, result: unknown, step: string, hook: string): JsonObject {
  const chosen = result instanceof SagaContext ? result : ctx;
  try {
    return storedDataOf(chosen as SagaContext) as JsonObject;
  } catch (err) {
    throw Object.assign(new Error(`the context after ${hook} of step "${step}" is not JSON-serialisable: ${(err as Error).message}`), {
      code: 'SAGA_CONTEXT_NOT_JSON',
    });
  }
}

function invalid(step: string, hook: string, expected: string, got: unknown): ErrorInfo {
  const kind = got === null ? 'null' : Array.isArray(got) ? 'an array' : typeof got === 'object' ? (got as object).constructor?.name ?? 'an object' : typeof got;
  return { code: 'SAGA_INVALID_HANDLER_RESULT', message: `${hook} of step "${step}" must return ${expected}, but returned ${kind}.` };
}

const isThenable = (value: unknown): value is PromiseLike<unknown> => typeof (value as { then?: unknown } | null)?.then === 'function';

/** A failure of the handler as data: the context stays as it was. */
function failure(input: HandlerInput, err: unknown): HandlerOutput {
  return { ok: false, data: input.data, error: toErrorInfo(err, HANDLER_FAILED) };
}

/** The first branch whose condition holds (conditions may be async), else `null`. */
function chooseBranch(step: ConditionalSagaStep<object>, ctx: SagaContext, response: SagaResponse | undefined, input: HandlerInput, from = 0): HandlerOutput | Promise<HandlerOutput> {
  const failed = (err: unknown): HandlerOutput => failure(input, err);
  for (let i = from; i < step.branches.length; i++) {
    const branch = step.branches[i]!;
    const chosen: HandlerOutput = { ok: true, data: input.data, branch: branch.key };
    if (!branch.condition) return chosen;
    const condition = branch.condition;
    let held: unknown;
    try {
      held = condition(ctx, response as SagaResponse);
    } catch (err) {
      return failed(err);
    }
    if (isThenable(held)) return Promise.resolve(held).then((h) => (h ? chosen : chooseBranch(step, ctx, response, input, i + 1)), failed);
    if (held) return chosen;
  }
  return { ok: true, data: input.data, branch: null };
}

/** Runs one handler; synchronously when the handler is synchronous. Never throws or rejects: failures are data. */
function run(step: SagaStep, input: HandlerInput): HandlerOutput | Promise<HandlerOutput> {
  let ctx: SagaContext;
  let response: SagaResponse | undefined;
  try {
    ctx = contextOver(input.data);
    response = input.response ? SagaResponse.from(input.response) : undefined;
  } catch (err) {
    return failure(input, err);
  }
  if (step.kind === 'conditional') return chooseBranch(step, ctx, response, input);
  const handler = step[`${input.hook}Handler` as 'onExecuteHandler'];
  if (!handler) return { ok: true, data: input.data };
  let result: unknown;
  try {
    result = handler(ctx, response as SagaResponse);
  } catch (err) {
    return failure(input, err);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (value) => outcome(step, input, ctx, value),
      (err: unknown) => failure(input, err),
    );
  }
  return outcome(step, input, ctx, result);
}

/** What a handler's result means for the chart (a request, the context, or a failure). */
function outcome(step: SagaStep, input: HandlerInput, ctx: SagaContext, result: unknown): HandlerOutput {
  try {
    if (result instanceof Error) return failure(input, result);
    const buildsRequest = step.kind === 'remote' && (input.hook === 'onExecute' || input.hook === 'onFailure');
    if (buildsRequest) {
      if (result !== undefined && !(result instanceof SagaRequest)) {
        return { ok: false, data: input.data, error: invalid(step.name, input.hook, 'a SagaRequest, nothing or an Error', result) };
      }
      const request = result ? { target: result.target, content: cloneJson(result.content ?? null) } : null;
      return { ok: true, data: contextData(ctx, undefined, step.name, input.hook), request };
    }
    if (result !== undefined && !(result instanceof SagaContext)) {
      return { ok: false, data: input.data, error: invalid(step.name, input.hook, 'the context, nothing or an Error', result) };
    }
    return { ok: true, data: contextData(ctx, result, step.name, input.hook) };
  } catch (err) {
    return failure(input, err);
  }
}

/** Runs a saga-level callback (`onSuccess`, `onFailure` of the definition) as a local handler. */
function runCallback(callbacks: SagaCallbacks, input: HandlerInput): HandlerOutput | Promise<HandlerOutput> {
  const callback = input.hook === 'onSuccess' ? callbacks.onSuccess : input.hook === 'onFailure' ? callbacks.onFailure : undefined;
  if (!callback) return { ok: true, data: input.data };
  let ctx: SagaContext;
  let result: unknown;
  try {
    ctx = contextOver(input.data);
    result = input.hook === 'onFailure' ? callback(ctx, input.failure ?? { step: null, code: 'SAGA_FAILED', message: 'the execution failed' }) : (callback as NonNullable<SagaCallbacks['onSuccess']>)(ctx);
  } catch (err) {
    return failure(input, err);
  }
  const done = (value: unknown): HandlerOutput => {
    if (value instanceof Error) return failure(input, value);
    try {
      return { ok: true, data: contextData(ctx, value instanceof SagaContext ? value : undefined, 'the saga', input.hook) };
    } catch (err) {
      return failure(input, err);
    }
  };
  return isThenable(result) ? Promise.resolve(result).then(done, (err: unknown) => failure(input, err)) : done(result);
}

const RESOLVED = 'sagachart.handler.resolved';

/** Runs one handler call of a definition: what the `handler` actor and the runtime both run. */
export type HandlerRunner = (input: HandlerInput) => HandlerOutput | Promise<HandlerOutput>;

/**
 * The runner of a definition's handlers: runs one user handler of one step on a fresh
 * `SagaContext` made from the snapshot's data, synchronously when the handler is synchronous. A
 * thrown or returned `Error` is data (so the chart decides what a failure means): it never throws
 * or rejects.
 */
export function handlerRunner(index: ReadonlyMap<string, SagaStep>, callbacks: SagaCallbacks = {}): HandlerRunner {
  return (input) => {
    if (input.step === SAGA_CALLBACK_STEP) return runCallback(callbacks, input);
    const step = index.get(input.step);
    if (!step) {
      return { ok: false, data: input.data, error: { code: 'SAGA_DEFINITION_MISMATCH', message: `no step "${input.step}" in this definition` } };
    }
    return run(step, input);
  };
}

/**
 * The `handler` actor: XState's promise-actor logic around a {@link HandlerRunner}. It resolves
 * with the handler's outcome and never rejects. Unlike `fromPromise` it keeps no AbortController
 * and resolves in the same macrostep queue when the handler returns synchronously, rather than a
 * promise job later. Its snapshots are `fromPromise`'s (`status`, `output`, `error`, `input`);
 * XState restarts it on restore, so a handler may run twice.
 */
export function createHandlerActor(execute: HandlerRunner): PromiseActorLogic<HandlerOutput, HandlerInput> {
  return {
    config: execute,
    transition: (snapshot, event) => {
      if (snapshot.status !== 'active') return snapshot;
      if (event.type === RESOLVED) return { ...snapshot, status: 'done', output: (event as unknown as { output: HandlerOutput }).output, input: undefined };
      if (event.type === 'xstate.stop') return { ...snapshot, status: 'stopped', input: undefined };
      return snapshot;
    },
    start: (snapshot, { self }) => {
      if (snapshot.status !== 'active') return;
      const resolve = (output: HandlerOutput) => {
        if (self.getSnapshot().status === 'active') self.send({ type: RESOLVED, output } as never);
      };
      const outcome = execute(snapshot.input as HandlerInput);
      if (outcome instanceof Promise) void outcome.then(resolve);
      else resolve(outcome);
    },
    getInitialSnapshot: (_scope, input) => ({ status: 'active', output: undefined, error: undefined, input }),
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (snapshot) => snapshot as never,
  };
}
