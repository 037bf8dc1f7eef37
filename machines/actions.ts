import { assign } from 'xstate';
import type { Clock } from '../src/clock.js';
import { previewJson, type ErrorInfo } from '../src/json.js';
import type { SagaStepStatus } from '../src/status.js';
import type { HandlerOutput, HistoryEntry, RemoteStepOutput, SagaMachineContext, StepRecord } from './types.js';

/** What actions and guards see. Events are loosely typed here: the chart is built from data. */
export interface ActionArgs {
  context: SagaMachineContext;
  event: { type: string; output?: unknown; error?: unknown; step?: string; phase?: string };
}

/** A transition as the compiler writes it. */
export interface Route {
  target: string;
  guard?: (args: ActionArgs) => boolean;
  actions?: unknown[];
}

export const handlerOutput = (args: ActionArgs) => args.event.output as HandlerOutput;
export const remoteOutput = (args: ActionArgs) => args.event.output as RemoteStepOutput;

/**
 * The action builders of one compiled machine, closed over its clock: timestamps are written by
 * actions, so tests on a `ManualClock` see exact times.
 */
export function chartActions(clock: Clock) {
  // Copies by hand: a spread with a computed key is a slow path of V8, and this runs at every step.
  const patch = (context: SagaMachineContext, path: string, change: Partial<StepRecord>) => {
    const steps: Record<string, StepRecord> = {};
    for (const key in context.steps) steps[key] = context.steps[key]!;
    steps[path] = Object.assign({}, context.steps[path], change);
    return steps;
  };

  /** Writes part of a step's record, computed from the context and event. */
  const record = (path: string, change: (args: ActionArgs) => Partial<StepRecord>) =>
    assign((args: ActionArgs) => ({ steps: patch(args.context, path, change(args)) }));

  /** The step starts (its first phase): stamps `startedAt`. */
  const start = (path: string) => record(path, () => ({ startedAt: clock.now() }));

  /** The step leaves its forward phase with `status`. */
  const exit = (path: string, status: SagaStepStatus) => record(path, () => ({ status, finishedAt: clock.now() }));

  /** Records the failure of a handler or of the request, on the step and as the execution's first failure. */
  const fail = (path: string, error: (args: ActionArgs) => ErrorInfo) =>
    assign((args: ActionArgs) => {
      const info = error(args);
      return {
        steps: patch(args.context, path, { error: info }),
        failure: args.context.failure ?? { step: path, ...info },
      };
    });

  const handlerError = (args: ActionArgs): ErrorInfo => {
    const out = args.event.output as HandlerOutput | undefined;
    if (out && !out.ok) return out.error;
    const err = args.event.error;
    return { code: 'SAGA_HANDLER_FAILED', message: err instanceof Error ? err.message : String(err) };
  };

  const setData = assign((args: ActionArgs) => {
    const out = handlerOutput(args);
    return out.ok ? { data: out.data } : {};
  });

  const addServices = (services: (args: ActionArgs) => readonly string[]) =>
    assign((args: ActionArgs) => {
      const add = services(args).filter((s) => !args.context.services.includes(s));
      return add.length ? { services: [...args.context.services, ...add] } : {};
    });

  /** A compensation starts (again, for an operator retry: earlier attempts are kept in the count). */
  const compensationStart = (path: string) =>
    record(path, (args) => {
      const prev = args.context.steps[path]?.compensation;
      return { compensation: { startedAt: clock.now(), ...(prev?.attempts ? { attempts: prev.attempts } : {}) } };
    });

  const compensationEnd = (path: string, error: ((args: ActionArgs) => ErrorInfo) | null, attempts?: (args: ActionArgs) => number) =>
    record(path, (args) => {
      const prev = args.context.steps[path]?.compensation ?? { startedAt: clock.now() };
      const done = { ...prev, finishedAt: clock.now(), ...(attempts ? { attempts: attempts(args) } : {}) };
      return error ? { compensation: { ...done, error: error(args) }, compensated: false } : { compensation: done, compensated: true };
    });

  const stamp = (key: 'startedAt' | 'finishedAt') => assign(() => ({ [key]: clock.now() }));

  /** Records an operator action or a commit decision in the execution's history (its note and step from the event). */
  const remember = (action: HistoryEntry['action']) =>
    assign((args: ActionArgs) => {
      const event = args.event as { step?: unknown; note?: unknown };
      const entry: HistoryEntry = { action, at: clock.now() };
      if (typeof event.step === 'string') entry.step = event.step;
      if (typeof event.note === 'string' && event.note) entry.note = event.note.slice(0, 1_000);
      return { history: [...(args.context.history ?? []), entry] };
    });

  /** The execution stops moving forward because an operator aborted it: the first failure, if it had none. */
  const aborted = assign((args: ActionArgs) => {
    const note = (args.event as { note?: unknown }).note;
    const message = `aborted by an operator${typeof note === 'string' && note ? `: ${note.slice(0, 1_000)}` : ''}; the steps that ran are compensated`;
    return { failure: args.context.failure ?? { step: null, code: 'SAGA_ABORTED', message } };
  });

  return { now: () => clock.now(), record, start, exit, fail, handlerError, setData, addServices, compensationStart, compensationEnd, stamp, remember, aborted };
}

export type ChartActions = ReturnType<typeof chartActions>;

/** Whether a handler actor's output is a failure. */
export const notOk = (args: ActionArgs): boolean => !handlerOutput(args).ok;

/** Whether the remote child gave up (500s or timeouts, attempts exhausted). */
export const gaveUp = (args: ActionArgs): boolean => remoteOutput(args).kind === 'failed';

/** The response status of a remote child that got an answer. */
export const answered = (status: number) => (args: ActionArgs): boolean => {
  const out = remoteOutput(args);
  return out.kind === 'response' && out.response.status === status;
};

/** The error of a remote child's output: its last failure, or the refusal it received. */
export const remoteError = (args: ActionArgs): ErrorInfo => {
  const out = remoteOutput(args);
  if (out.kind === 'failed') return out.error;
  return {
    code: 'SAGA_PARTICIPANT_REJECTED',
    message: `${out.response.service ?? 'the participant'} refused the request (status ${out.response.status}): ${previewJson(out.response.content)}`,
  };
};
