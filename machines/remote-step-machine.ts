import { assign, setup } from 'xstate';
import type { Clock } from '../src/clock.js';
import { previewJson } from '../src/json.js';
import { remoteStepEffects as effects } from './effects.js';
import type { RemoteStepContext, RemoteStepInput, RemoteStepOutput, SagaMachineEvent } from './types.js';

type Reply = Extract<SagaMachineEvent, { type: 'saga.response' | 'saga.deadline' }>;
type RemoteStepEvent = Reply | Extract<SagaMachineEvent, { type: 'saga.retry-step' }>;

/** An operator's retry: one more attempt, which the retry policy does not count. */
const retried = ({ context }: { context: RemoteStepContext }) => ({ attempt: context.attempt + 1, maxAttempts: context.maxAttempts + 1 });

const isMine = ({ context, event }: { context: RemoteStepContext; event: Reply }): boolean =>
  event.step === context.step && event.phase === context.phase && event.attempt === context.attempt;

const failure = (context: RemoteStepContext, event: Reply) =>
  event.type === 'saga.deadline'
    ? {
        code: 'SAGA_STEP_TIMEOUT',
        message: `no response to ${context.target} within ${context.timeoutMs} ms (attempt ${context.attempt - context.firstAttempt + 1} of ${context.maxAttempts})`,
      }
    : event.response.error
      ? {
          code: event.response.error.code,
          message: `${event.response.error.message} (attempt ${context.attempt - context.firstAttempt + 1} of ${context.maxAttempts})`,
        }
      : {
          code: 'SAGA_PARTICIPANT_SYSTEM_ERROR',
          message: `${context.target} answered 500 (attempt ${context.attempt - context.firstAttempt + 1} of ${context.maxAttempts}): ${previewJson(event.response.content)}`,
        };

/**
 * The child actor of a remote step (or of a remote compensation): it holds the outgoing request,
 * its attempt and its deadline, and waits for the matching response. Entering `waiting` declares
 * the request and its deadline as effects (see `effects.ts`), which the runtime stores in the
 * outbox and then sends and arms; deadlines are absolute times, so nothing here depends on
 * `after`, which XState does not re-arm on restore. A 500 or a timeout is retried after a
 * backoff until the attempts run out.
 */
export function createRemoteStepMachine(clock: Clock) {
  return setup({
    types: {
      context: {} as RemoteStepContext,
      input: {} as RemoteStepInput,
      events: {} as RemoteStepEvent,
      output: {} as RemoteStepOutput,
    },
  }).createMachine({
    id: 'remote-step',
    // Field by field rather than a spread of the input: this runs for every request.
    context: ({ input }) => ({
      uuid: input.uuid,
      sagaName: input.sagaName,
      step: input.step,
      phase: input.phase,
      target: input.target,
      content: input.content,
      firstAttempt: input.firstAttempt,
      maxAttempts: input.maxAttempts,
      backoffMs: input.backoffMs,
      timeoutMs: input.timeoutMs,
      attempt: input.firstAttempt,
      deadline: null,
      errors: [],
      response: null,
      ...(input.user ? { user: input.user } : {}),
    }),
    initial: 'waiting',
    states: {
      waiting: {
        entry: [assign({ deadline: ({ context }) => (context.timeoutMs === null ? null : clock.now() + context.timeoutMs) }), effects.request, effects.timer],
        exit: effects.settled,
        on: {
          'saga.response': [
            {
              guard: ({ context, event }) => isMine({ context, event }) && event.response.status === 500,
              target: 'retrying',
              actions: assign({ errors: ({ context, event }) => [...context.errors, failure(context, event)] }),
            },
            {
              guard: isMine,
              target: 'responded',
              actions: assign({ response: ({ event }) => (event.type === 'saga.response' ? event.response : null) }),
            },
          ],
          'saga.deadline': {
            guard: ({ context, event }) => isMine({ context, event }) && context.deadline !== null,
            target: 'retrying',
            actions: assign({ errors: ({ context, event }) => [...context.errors, failure(context, event)] }),
          },
          // An operator sends the request again now: a new attempt, on top of those the policy allows.
          'saga.retry-step': { guard: ({ context, event }) => event.step === context.step, target: 'waiting', reenter: true, actions: assign(retried) },
        },
      },
      retrying: {
        always: [
          { guard: ({ context }) => context.attempt >= context.firstAttempt + context.maxAttempts - 1, target: 'failed' },
          { guard: ({ context }) => context.backoffMs === 0, target: 'waiting', actions: assign({ attempt: ({ context }) => context.attempt + 1 }) },
          { target: 'backoff' },
        ],
      },
      backoff: {
        entry: [assign({ deadline: ({ context }) => clock.now() + context.backoffMs * 2 ** (context.attempt - 1) }), effects.timer],
        exit: effects.settled,
        on: {
          'saga.retry-step': { guard: ({ context, event }) => event.step === context.step, target: 'waiting', actions: assign(retried) },
          'saga.deadline': {
            guard: isMine,
            target: 'waiting',
            actions: assign({ attempt: ({ context }) => context.attempt + 1 }),
          },
        },
      },
      responded: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }): RemoteStepOutput =>
      context.response
        ? { kind: 'response', response: context.response, attempts: context.attempt }
        : { kind: 'failed', error: context.errors.at(-1) ?? { code: 'SAGA_STEP_FAILED', message: 'the request failed' }, attempts: context.attempt },
  });
}

