import { fromPromise } from 'xstate';
import { SagaContext } from '../src/context.js';
import type { SagaStep } from '../src/definition/steps.js';
import { toErrorInfo, type ErrorInfo, type JsonObject } from '../src/json.js';
import { SagaRequest } from '../src/messages/saga-request.js';
import { SagaResponse } from '../src/messages/saga-response.js';
import type { HandlerInput, HandlerOutput } from './types.js';

const HANDLER_FAILED = 'SAGA_HANDLER_FAILED';

function contextData(ctx: SagaContext, result: unknown, step: string, hook: string): JsonObject {
  const chosen = result instanceof SagaContext ? result : ctx;
  try {
    return (chosen as SagaContext).toJSON() as JsonObject;
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

async function run(step: SagaStep, input: HandlerInput): Promise<HandlerOutput> {
  const ctx = new SagaContext(input.data);
  const response = input.response ? SagaResponse.from(input.response) : undefined;
  try {
    if (step.kind === 'conditional') {
      for (const branch of step.branches) {
        if (!branch.condition || (await branch.condition(ctx, response as SagaResponse))) {
          return { ok: true, data: input.data, branch: branch.key };
        }
      }
      return { ok: true, data: input.data, branch: null };
    }
    const handler = step[`${input.hook}Handler` as 'onExecuteHandler'];
    if (!handler) return { ok: true, data: input.data };
    const result = await handler(ctx, response as SagaResponse);
    if (result instanceof Error) return { ok: false, data: input.data, error: toErrorInfo(result, HANDLER_FAILED) };
    const buildsRequest = step.kind === 'remote' && (input.hook === 'onExecute' || input.hook === 'onFailure');
    if (buildsRequest) {
      if (result !== undefined && !(result instanceof SagaRequest)) {
        return { ok: false, data: input.data, error: invalid(step.name, input.hook, 'a SagaRequest, nothing or an Error', result) };
      }
      const request = result ? { target: result.target, content: JSON.parse(JSON.stringify(result.content ?? null)) } : null;
      return { ok: true, data: contextData(ctx, undefined, step.name, input.hook), request };
    }
    if (result !== undefined && !(result instanceof SagaContext)) {
      return { ok: false, data: input.data, error: invalid(step.name, input.hook, 'the context, nothing or an Error', result) };
    }
    return { ok: true, data: contextData(ctx, result, step.name, input.hook) };
  } catch (err) {
    return { ok: false, data: input.data, error: toErrorInfo(err, HANDLER_FAILED) };
  }
}

/**
 * The `handler` promise actor: runs one user handler of one step on a fresh `SagaContext` made
 * from the snapshot's data. It never rejects; a thrown or returned `Error` is data, so the chart
 * decides what a failure means. XState restarts it on restore, so a handler may run twice.
 */
export function createHandlerActor(index: ReadonlyMap<string, SagaStep>) {
  return fromPromise<HandlerOutput, HandlerInput>(async ({ input }) => {
    const step = index.get(input.step);
    if (!step) {
      return { ok: false, data: input.data, error: { code: 'SAGA_DEFINITION_MISMATCH', message: `no step "${input.step}" in this definition` } };
    }
    return run(step, input);
  });
}
