import type { ErrorInfo, JsonObject, JsonValue } from '../src/json.js';
import type { RequestKey, StepPhase, TransactionPhase } from '../src/messages/request-id.js';
import type { SagaResponseData } from '../src/messages/saga-response.js';
import type { SagaDeadlineEvent } from '../src/messages/saga-timer.js';
import type { SagaStepStatus } from '../src/status.js';

/** What a step's compensation did. */
export interface CompensationRecord {
  startedAt: number;
  finishedAt?: number;
  error?: ErrorInfo;
  attempts?: number;
  /** An operator marked a failed compensation as dealt with by hand. */
  resolved?: boolean;
}

/**
 * The history of one step, written as the step leaves each phase. While the chart is inside a
 * step, the step's status is the state it is in; `status` here is the status the step left with,
 * so a status is only ever in one place at a time.
 */
export interface StepRecord {
  status?: SagaStepStatus;
  startedAt?: number;
  finishedAt?: number;
  error?: ErrorInfo;
  attempts?: number;
  /** A remote step whose onExecute returned no request. */
  skipped?: boolean;
  /** A conditional step's chosen branch key (`null`: none held). */
  branch?: string | null;
  compensation?: CompensationRecord;
  compensated?: boolean;
}

/** The first failure of an execution, which started its rollback. */
export interface FailureInfo extends ErrorInfo {
  /** Path of the step that failed; `null` when the execution was rejected. */
  step: string | null;
}

/** Context of a compiled saga machine. Everything in it is JSON. */
export interface SagaMachineContext {
  uuid: string;
  sagaName: string;
  /** The saga's own data: what handlers see as `SagaContext`. */
  data: JsonObject;
  autocommit: boolean;
  steps: Record<string, StepRecord>;
  failure: FailureInfo | null;
  /** Services that took part (request targets and `relatedServices`), for the commit. */
  services: string[];
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Path of the step whose failed compensation an operator is retrying. */
  retrying: string | null;
  /** What operators and commit decisions did to the execution, in order. */
  history: HistoryEntry[];
  /** What each phase of the two-phase commit of the participants' transactions ended with. */
  transaction: TransactionRecord;
  /** Who started the execution (`run(saga, { user })`), sent with every request. */
  user?: string;
  /** A saga-level callback (`onSuccess`, `onFailure` of the definition) that failed, and how. */
  callbackErrors?: { onSuccess?: ErrorInfo; onFailure?: ErrorInfo };
}

/** The phases of the two-phase commit that have ended, and how (absent: not run). */
export interface TransactionRecord {
  reserve?: TransactionPhaseResult;
  commit?: TransactionPhaseResult;
  reject?: TransactionPhaseResult;
}

/** How one phase of the two-phase commit ended. */
export interface TransactionPhaseResult {
  /** Every service voted yes (reserve) or acknowledged (commit, reject). */
  ok: boolean;
  finishedAt: number;
  parts: TransactionPartResult[];
  /** The service whose answer made the reserve fail, and why. */
  refusal?: TransactionRefusal;
}

/** How one service took part in a phase. */
export interface TransactionPartResult {
  service: string;
  /**
   * `yes`: voted to commit (reserve); `ack`: acknowledged (commit, reject); `no`: refused;
   * `timeout`: no answer in time; `resolved`: an operator marked it dealt with by hand (commit,
   * reject); `pending`: the phase ended first.
   */
  outcome: 'yes' | 'no' | 'timeout' | 'ack' | 'resolved' | 'pending';
  attempts: number;
}

/** Why a reserve failed: the service, and its answer (or the lack of one). */
export interface TransactionRefusal extends ErrorInfo {
  service: string;
  /** The service's answer: its status and a bounded preview of its content; absent on a timeout. */
  answer?: { status: number; content: string };
}

/** Input of a `transaction` child actor: one phase of the two-phase commit. */
export interface TransactionInput {
  uuid: string;
  sagaName: string;
  phase: TransactionPhase;
  services: string[];
  /** How long a service has to answer: the reserve fails after it; commit and reject send again. */
  timeoutMs: number;
  /** First wait before commit or reject is sent again after a failed attempt (doubling, at most a minute). */
  backoffMs: number;
}

/** One service's part in a phase: its attempt, and whether it waits for an answer or a backoff. */
export interface TransactionPart {
  service: string;
  attempt: number;
  state: 'waiting' | 'backoff' | 'done';
  /** Absolute time (ms) at which the current wait ends. */
  deadline: number;
  /** The round in which the current attempt's message was sent. */
  sentIn: number;
  outcome: TransactionPartResult['outcome'];
}

/**
 * Context of a `transaction` child actor. The child waits on one deadline, the earliest of its
 * parts'; `round` counts how often it was set, and names it (a deadline of an older round is stale).
 */
export interface TransactionContext extends TransactionInput {
  parts: TransactionPart[];
  round: number;
  refusal: TransactionRefusal | null;
}

/** Output of a `transaction` child actor. */
export interface TransactionOutput {
  phase: TransactionPhase;
  ok: boolean;
  parts: TransactionPartResult[];
  refusal: TransactionRefusal | null;
}

/** One operator action or commit decision, as recorded on its execution. */
export interface HistoryEntry {
  action: 'commit' | 'reject' | 'rollback' | 'abort' | 'retry-step' | 'retry-compensation' | 'resolve-compensation' | 'resolve-transaction';
  /** When the chart took it (ms since the epoch). */
  at: number;
  step?: string;
  note?: string;
}

/** Input of a compiled saga machine. */
export interface SagaMachineInput {
  uuid: string;
  data?: JsonObject;
  autocommit?: boolean;
  /** Who starts the execution: stored with it and sent with every request. */
  user?: string;
}

/** The events a saga actor takes. Every one that comes from outside carries what it is for. */
export type SagaMachineEvent =
  | { type: 'saga.start' }
  | { type: 'saga.response'; step: string; phase: StepPhase; attempt: number; response: SagaResponseData }
  | SagaDeadlineEvent
  | { type: 'saga.commit'; note?: string }
  | { type: 'saga.reject'; note?: string }
  | { type: 'saga.rollback'; note?: string }
  | { type: 'saga.abort'; note?: string }
  | { type: 'saga.retry-step'; step: string; note?: string }
  | { type: 'saga.retry-compensation'; step: string; note?: string }
  | { type: 'saga.resolve-compensation'; step: string; note?: string }
  /** A service's part of a commit or reject (`$tx/<service>`) marked as dealt with by hand. */
  | { type: 'saga.resolve-transaction'; step: string; note?: string };

/** Which handler a handler actor runs. */
export type HandlerHook = 'onExecute' | 'onSuccess' | 'onError' | 'onFailure' | 'condition';

/** The step of a handler input that runs a saga-level callback rather than a step's handler. */
export const SAGA_CALLBACK_STEP = '$saga';

/** Input of the `handler` promise actor. */
export interface HandlerInput {
  step: string;
  hook: HandlerHook;
  data: JsonObject;
  response?: SagaResponseData;
  /** For the saga-level `onFailure`: the failure that started the rollback. */
  failure?: FailureInfo;
}

/** Output of the `handler` promise actor: it never rejects, failures are data. */
export type HandlerOutput =
  | { ok: true; data: JsonObject; request?: { target: string; content: JsonValue } | null; branch?: string | null }
  | { ok: false; data: JsonObject; error: ErrorInfo };

/** Input of a `remoteStep` child actor. */
export interface RemoteStepInput {
  uuid: string;
  sagaName: string;
  step: string;
  phase: StepPhase;
  target: string;
  content: JsonValue;
  /** Number of the first attempt: 1, or one past the attempts of an earlier try (an operator retry). */
  firstAttempt: number;
  /** Attempts allowed in this try. */
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number | null;
  /** Who started the execution, when known. */
  user?: string;
}

/** Context of a `remoteStep` child actor: the outgoing request, its attempt and deadline. */
export interface RemoteStepContext extends RemoteStepInput {
  attempt: number;
  /** Absolute time (ms) at which the current wait ends; `null` waits for ever. */
  deadline: number | null;
  errors: ErrorInfo[];
  response: SagaResponseData | null;
}

/** Output of a `remoteStep` child actor. */
export type RemoteStepOutput =
  | { kind: 'response'; response: SagaResponseData; attempts: number }
  | { kind: 'failed'; error: ErrorInfo; attempts: number };

/** The event that delivers a participant's response to its execution: the one way to build it. */
export function responseEvent(response: SagaResponseData, key: RequestKey): Extract<SagaMachineEvent, { type: 'saga.response' }> {
  return { type: 'saga.response', step: key.step, phase: key.phase, attempt: key.attempt, response };
}
