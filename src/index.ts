/**
 * sagachart: distributed transactions across microservices by the Saga pattern, orchestrated.
 * Each saga definition compiles into an XState v5 statechart; executions run on a transition table
 * compiled from it, and any of their snapshots restores into a plain XState actor.
 *
 * This file is the public API: explicit named exports only, snapshotted by a test.
 */
export { Saga, type SagaOptions, type SagaRunOptions } from './definition/saga.js';
export {
  LocalSagaStep,
  RemoteSagaStep,
  ConditionalSagaStep,
  type SagaStep,
  type SagaStepKind,
  type SagaBranch,
  type RetryPolicy,
} from './definition/steps.js';
export type { Awaitable, LocalHandler, RequestHandler, ResponseHandler, Condition } from './definition/handlers.js';
export { SagaContext } from './context.js';
export { SagaRequest } from './messages/saga-request.js';
export { SagaResponse, type SagaResponseData } from './messages/saga-response.js';
export { SagaResponseStatus } from './messages/saga-response-status.js';
export { formatRequestId, isTransactionPhase, parseRequestId, type RequestKey, type StepPhase, type TransactionPhase } from './messages/request-id.js';
export type { OutgoingRequest } from './messages/outgoing-request.js';
export type { SagaTimer, SagaDeadlineEvent } from './messages/saga-timer.js';
export { SagaStatus, SagaStepStatus } from './status.js';
export type { JsonValue, JsonObject, ErrorInfo } from './json.js';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './clock.js';
export type { SagaLogger, LogFields } from './logger.js';

export { compileSaga, createSagaActor, type CompiledSaga, type SagaMachine, type SagaActor, type SagaSnapshot, type SagaActorOptions } from '../machines/compile.js';
export {
  sagaStatusOf,
  stepViews,
  pendingWork,
  isAwaitingCommit,
  type SagaStepView,
  type PendingWork,
  type SagaSnapshotLike,
} from '../machines/read.js';
export { sagaDiagram } from '../machines/diagram.js';
export { inspectorOptions } from '../machines/inspector-options.js';
export type {
  SagaMachineContext,
  SagaMachineEvent,
  SagaMachineInput,
  StepRecord,
  FailureInfo,
  HistoryEntry,
  TransactionRecord,
  TransactionPhaseResult,
  TransactionPartResult,
  TransactionRefusal,
} from '../machines/types.js';

export {
  SagaManager,
  SAGA_OPERATOR_ACTIONS,
  type SagaManagerOptions,
  type SagaManagerStats,
  type SagaExecutionDetails,
  type SagaOperatorAction,
  type SagaActionInput,
  type SagaActionResult,
  type RunOptions,
  type RecoverOptions,
  type RecoveryReport,
} from './manager/saga-manager.js';
export type { StoreEvent, StoreListener } from './runtime/saga-runtime.js';
export { SagaExecution, type SagaStepFailure, type SagaTransactionView } from './runtime/saga-execution.js';
export { SagaFailedExecutionError } from './runtime/saga-failed-execution-error.js';
export { SagaFailedCommitError } from './runtime/saga-failed-commit-error.js';
export { SagaRollbackError } from './runtime/saga-rollback-error.js';

export {
  RECORD_FORMAT,
  type SagaRepository,
  type SagaRecord,
  type SagaRecordSummary,
  type SagaListFilter,
  type SagaListPage,
} from './repositories/saga-repository.js';
export { InMemorySagaRepository } from './repositories/in-memory-saga-repository.js';
export { FileSagaRepository, type FileSagaRepositoryOptions } from './repositories/file-saga-repository.js';
export { RedisSagaRepository, type RedisSagaRepositoryOptions } from './repositories/redis-saga-repository.js';

export type { SagaBroker, ResponseListener } from './transport/saga-broker.js';
export { InProcessBroker } from './transport/in-process-broker.js';
export { WebSocketBroker, type BrokerAnswer, type WebSocketBrokerOptions, type WebSocketBrokerStats, type ParticipantAuth } from './transport/websocket-broker.js';
export { PROTOCOL_VERSION, CloseCode, FrameError } from './transport/protocol.js';
export { asyncApiDocument } from './transport/asyncapi.js';
export { connectParticipant, SagaParticipantRefusedError, type Participant, type ParticipantOptions, type ParticipantTlsOptions } from './participant/connect-participant.js';
export {
  ParticipantRuntime,
  type ParticipantHandler,
  type ParticipantHandlers,
  type ParticipantRequestInfo,
  type ParticipantRuntimeOptions,
  type TransactionHook,
  type TransactionHooks,
} from './participant/participant-runtime.js';

export {
  SagaError,
  EmptySagaError,
  SagaNotCommittedError,
  SagaAlreadyCommittedError,
  UndefinedOnExecuteError,
  SagaHookAlreadySetError,
  DuplicateStepNameError,
  InvalidSagaDefinitionError,
  SagaContextValidationError,
  SagaExecutionNotFoundError,
  SagaNotRegisteredError,
  SagaDefinitionMismatchError,
  SagaVersionConflictError,
  SagaSnapshotError,
  SagaRepositoryLockedError,
  SagaRepositoryLockLostError,
  SagaInvalidStateError,
  SagaUnknownRequestError,
  SagaManagerClosedError,
  SagaBusinessError,
  SagaChartUnsupportedError,
  SagaChartError,
  SagaAlreadyRunningError,
} from './errors/index.js';

export { AdminApi, type AdminApiOptions, type AdminActionRouter, type RoutedActionResult } from './admin/admin-api.js';
export { InspectionStream, type InspectionSummary } from './admin/inspection-stream.js';
export type { ChartNode, SagaChart } from './admin/chart.js';
export { SagaCluster, type SagaClusterOptions, type SagaClusterStats } from './cluster/saga-cluster.js';
export { ClusterMembership, ownerAmong } from './cluster/membership.js';
