/**
 * minos-microservice-saga's own test suite (packages/core/minos-microservice-saga/tests/ of
 * minos-framework/minos-python), ported scenario by scenario to sagachart's public API. Each test
 * names the minos test it ports; where sagachart departs from minos on purpose (README,
 * "Differences from minos"), the test asserts sagachart's documented behaviour and says which
 * departure applies. The fixtures of minos's tests/utils.py are in test/support/minos-port.ts.
 *
 * How minos's calls translate: `SagaExecution.from_definition(saga).execute()` is
 * `manager.run(saga, { pauseOnDisk: true })` (it resolves paused, once stored), and
 * `execution.execute(SagaResponse(content, related_services, status))` is `manager.resume()` with
 * a response to the request the step sent (`respond()` / `reply()`); a run "paused on memory" is
 * `manager.run(saga)` answered by hand through a `ManualBroker`. minos's `broker_publisher.messages`
 * are the steps' requests (`broker.requests`) plus the two-phase commit's messages
 * (`broker.transactions`: reserve, commit, reject, one per service). A step's `related_services`
 * has no per-step equivalent: the services that took part are `execution.services`.
 *
 * Not ported, 139 tests with no equivalent here (file: tests — why), one line each:
 * - test_exceptions.py: all 27 (test_type, test_step*, test_execution*) — Python exception class hierarchy and repr() strings; errors here are SagaError classes with a code, checked where raised.
 * - test_middleware.py: all 7 (test_transactional_command_*) — minos's participant-side middleware over REQUEST_HEADERS_CONTEXT_VAR and its transaction repository.
 * - test_services.py: test_get_enroute, test_reply — SagaService's enroute decorator for minos's `orderReply` broker topic.
 * - test_utils.py: test_get_service_name, test_get_service_name_raises — the service name from minos's Config; the orchestrator has none here.
 * - test_messages.py: TestSagaRequest::test_repr, test_hash; TestSagaResponse::test_repr, test_hash — Python repr() and hash().
 * - test_manager.py: test_constructor_without_broker — dependency injection (NotProvidedException); the broker defaults to an InProcessBroker here.
 * - test_manager.py: test_context_manager — Python's `async with`.
 * - test_manager.py: test_run_with_pause_on_memory_with_headers, …_with_headers_already_related_services, test_run_with_pause_on_disk_with_headers — related_services written back into REQUEST_HEADERS_CONTEXT_VAR of the request being handled.
 * - test_manager.py: test_run_with_user_context_var — REQUEST_USER_CONTEXT_VAR overriding `user`; the user given to run() is what is sent here (see test_execute_and_publish).
 * - test_executions/test_commit.py: test_constructor_without_broker — dependency injection.
 * - test_executions/test_status.py: TestSagaStatus::test_from_raw_already, TestSagaStepStatus::test_from_raw_already — coercing an enum member; statuses are plain strings here.
 * - test_executions/test_steps/test_abc.py: test_from_raw, test_from_raw_with_cls, test_from_raw_already, test_from_raw_raises — raw step executions and class import by name.
 * - test_executions/test_repositories/test_abc.py: all 6 (test_store, test_load*, test_delete*) — minos's SagaExecutionRepository base class; the repositories here have their own conformance suite.
 * - test_executions/test_repositories/test_database/test_factories.py: test_abstract — minos's database operation factories.
 * - test_executions/test_repositories/test_database/test_impl.py: all 6 (test_store*, test_load*, test_delete*) — minos's database repository.
 * - test_executions/test_executors/test_abc.py: test_constructor, test_exec_with_parameters, test_exec_function, test_exec_function_transaction — the Executor class, SagaOperation parameters, minos's transaction repository.
 * - test_executions/test_executors/test_local.py, test_response.py: test_constructor — the Executor class hierarchy.
 * - test_executions/test_executors/test_request.py: test_constructor, test_constructor_without_broker — the RequestExecutor class and dependency injection.
 * - test_executions/test_executors/test_request.py: test_exec_with_headers — nested `transactions` headers from REQUEST_HEADERS_CONTEXT_VAR.
 * - test_executions/test_saga/test_constructor.py: test_from_saga — the deprecated from_saga() alias.
 * - test_definitions/test_operations.py: all 10 (test_callback, test_parameters*, test_raw*, test_from_raw*) — SagaOperation, a callback with parameters and a raw form; handlers are plain functions here.
 * - test_definitions/test_saga.py: test_commit_constructor_define_callback, test_committed_true — Saga(commit=…) and Saga(committed=…) constructor arguments.
 * - test_definitions/test_saga.py: test_step; test_definitions/test_steps/test_abc.py: test_step — the deprecated step() alias.
 * - test_definitions/test_saga.py: test_local_operation, test_local_callback, test_remote_operation, test_remote_callback — local_step(callback) / remote_step(SagaOperation); steps take an optional name here and handlers through onExecute().
 * - test_definitions/test_saga.py: test_add_step, test_add_step_raises — passing a pre-built step (AlreadyOnSagaException); steps are made by their saga here.
 * - test_definitions/test_saga.py: test_raw, test_from_raw, test_from_raw_already, test_validate — raw definitions; definitions are code here, identified by name@hash.
 * - test_definitions/test_steps/test_abc.py: test_from_raw, test_from_raw_with_cls, test_from_raw_raises — raw steps and class import by name.
 * - test_definitions/test_steps/test_abc.py: test_saga — the step's `saga` attribute (protected here).
 * - test_definitions/test_steps/test_abc.py: test_conditional_step_raises, test_local_step_raises, test_remote_step_raises, test_commit_raises — a step without a saga (SagaNotDefinedException) cannot be made here.
 * - test_definitions/test_steps/test_local.py: test_on_execute_constructor, test_on_failure_constructor; test_remote.py: test_on_{execute,failure,success,error}_constructor — hooks given to a step constructor; only the methods set them here.
 * - test_definitions/test_steps/test_local.py, test_remote.py: test_raw, test_from_raw, test_from_raw_already, test_equals — raw steps and equality by callback.
 * - test_definitions/test_steps/test_conditional.py: TestConditionalSagaStep::test_constructor — ConditionalSagaStep(if_then=…, else_then=…).
 * - test_definitions/test_steps/test_conditional.py: TestConditionalSagaStep::test_raw, test_from_raw, test_from_raw_without_else, test_from_raw_already, test_equals — raw conditional steps and equality.
 * - test_definitions/test_steps/test_conditional.py: TestIfThenAlternative::test_condition, test_raw, test_from_raw, test_from_raw_already, test_equals; TestElseThenAlternative::test_raw, test_from_raw, test_from_raw_already, test_equals — the condition as a SagaOperation, raw alternatives and equality.
 *
 * Kept out because sagachart fails them and no departure covers it (reported as findings):
 * - test_manager.py: test_run_with_pause_on_disk_with_error, test_run_with_pause_on_disk_without_autocommit — with
 *   pauseOnDisk, run() resolves `paused` (the stored wait) when the broker then fails to send the first request; the
 *   execution errors only afterwards, and raiseOnError does not throw. minos returns it errored.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConditionalSagaStep,
  createSagaActor,
  EmptySagaError,
  formatRequestId,
  InMemorySagaRepository,
  InvalidSagaDefinitionError,
  LocalSagaStep,
  RemoteSagaStep,
  Saga,
  SagaAlreadyCommittedError,
  SagaAlreadyRunningError,
  SagaContext,
  SagaExecution,
  SagaFailedCommitError,
  SagaFailedExecutionError,
  SagaHookAlreadySetError,
  SagaInvalidStateError,
  SagaManager,
  SagaNotCommittedError,
  SagaRequest,
  SagaResponse,
  SagaResponseStatus,
  SagaRollbackError,
  SagaStatus,
  SagaStepStatus,
  sagaStatusOf,
  stepViews,
  UndefinedOnExecuteError,
} from '../../src/index.js';
import { closeManagers, collectingLogger, managerWith, ManualBroker, rows, stepOf } from '../support/harness.js';
import {
  ADD_ORDER,
  addOrderCondition,
  answerTransactions,
  CREATE_PAYMENT,
  createPayment,
  createPaymentRaises,
  DELETE_ORDER,
  deleteOrderCondition,
  deletePayment,
  foo,
  handleOrderSuccess,
  handleTicketError,
  handleTicketErrorRaises,
  handleTicketSuccess,
  handleTicketSuccessRaises,
  reply,
  respond,
  sendCreateOrder,
  sendCreateProduct,
  sendCreateTicket,
  sendCreateTicketRaises,
  sendDeleteOrder,
  sendDeleteTicket,
  sent,
  ThrowingBroker,
  TWO_REMOTE,
} from '../support/minos-port.js';

afterEach(closeManagers);

const quiet = () => collectingLogger();

describe('minos test_executions/test_saga/test_execute.py', () => {
  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute
  it('test_execute: pauses at each remote step with one request, then finishes with reserve and commit messages; running it again is refused', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const first = await manager.run(TWO_REMOTE, { pauseOnDisk: true });
    expect(first.status).toBe(SagaStatus.Paused);
    expect(sent(broker.requests)).toEqual([['execute', 'order.create']]);

    const second = await respond(manager, broker.requests[0]!, foo('order'), ['ticket']);
    expect(second.status).toBe(SagaStatus.Paused);
    expect(sent(broker.requests.slice(1))).toEqual([['execute', 'ticket.create']]);

    await respond(manager, broker.requests[1]!, foo('ticket'), ['ticket']);
    // minos finishes inside execute(); here the commit's answers are awaited (departure: "commit
    // and reject messages are published once and not awaited" → sent until acknowledged).
    const done = await manager.waitFor(first.uuid);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.toJSON()).toEqual({ order: foo('order'), ticket: foo('ticket') });
    // minos: 4 messages, reserve and commit for each of 2 services. Departure ("the saga's own
    // service takes part in the commit"): here the services are the requests' targets.
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'order'],
      ['reserve', 'ticket'],
      ['commit', 'order'],
      ['commit', 'ticket'],
    ]);
    expect(broker.requests).toHaveLength(2);
    // minos: execute() again raises SagaExecutionAlreadyExecutedException.
    await expect(manager.run(TWO_REMOTE, { uuid: first.uuid })).rejects.toBeInstanceOf(SagaAlreadyRunningError);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute_and_publish
  it('test_execute_and_publish: the request carries the target, the content, the execution (its transaction id) and the user', async () => {
    const user = randomUUID();
    const definition = new Saga('publish').remoteStep().onExecute(sendCreateOrder).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(definition, { pauseOnDisk: true, user });
    expect(broker.requests).toEqual([
      {
        requestId: formatRequestId({ uuid: execution.uuid, phase: 'execute', attempt: 1, step: 'step-1' }),
        uuid: execution.uuid,
        sagaName: 'publish',
        step: 'step-1',
        phase: 'execute',
        attempt: 1,
        target: 'order.create',
        content: foo('create_order!'),
        deadline: null,
        user,
      },
    ]);
    expect(execution.transaction.id).toBe(execution.uuid);
    expect(execution.status).toBe(SagaStatus.Paused);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute_failure
  it('test_execute_failure: on_success raising compensates that step and the one before, rejects, errors; a late response is ignored', async () => {
    const saga = new Saga('execute-failure')
      .remoteStep()
      .onExecute(sendCreateOrder)
      .onSuccess(handleOrderSuccess)
      .onFailure(sendDeleteOrder)
      .remoteStep()
      .onExecute(sendCreateTicket)
      .onSuccess(handleTicketSuccessRaises)
      .onFailure(sendDeleteTicket)
      .commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga);
    running.catch(() => undefined);
    await reply(manager, broker, 0, foo('order'), ['ticket']);
    await reply(manager, broker, 1, foo('ticket'), ['ticket']);
    // The compensations are remote: each waits for its answer here.
    await reply(manager, broker, 2, {});
    await reply(manager, broker, 3, {});
    const error = await running.then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    const execution = (error as SagaFailedExecutionError).execution;
    expect(execution.status).toBe(SagaStatus.Errored);
    // minos: 4 messages after the failing response: the two compensations, in reverse, and a reject per service.
    expect(sent(broker.requests.slice(2))).toEqual([
      ['compensate', 'ticket.create'],
      ['compensate', 'order.delete'],
    ]);
    expect(broker.requests[2]!.content).toEqual(foo('delete_ticket!'));
    expect(sent(broker.transactions)).toEqual([
      ['reject', 'order'],
      ['reject', 'ticket'],
    ]);
    expect(rows(execution)).toEqual([
      ['step-1', SagaStepStatus.Finished, true],
      ['step-2', SagaStepStatus.ErroredOnSuccess, true],
    ]);

    // minos: execute(response) of the errored execution returns its context and sends nothing.
    const after = await respond(manager, broker.requests[1]!, foo('fixed failure!'), ['ticket']);
    expect(after.status).toBe(SagaStatus.Errored);
    expect(after.context.toJSON()).toEqual(execution.context.toJSON());
    expect(manager.stats().ignoredResponses.late).toBe(1);
    expect(broker.requests).toHaveLength(4);
    expect(broker.transactions).toHaveLength(2);
    // minos: execute() again raises SagaExecutionAlreadyExecutedException.
    await expect(manager.run(saga, { uuid: execution.uuid })).rejects.toBeInstanceOf(SagaAlreadyRunningError);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute_commit
  it('test_execute_commit: the last response leads to the commit, 4 messages under the execution as transaction id', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(TWO_REMOTE);
    const paused = await reply(manager, broker, 0, foo('order'), ['ticket']);
    expect(paused.status).toBe(SagaStatus.Paused);
    await reply(manager, broker, 1, foo('ticket'), ['ticket']);
    const done = await running;
    expect(done.status).toBe(SagaStatus.Finished);
    expect(done.context.toJSON()).toEqual({ order: foo('order'), ticket: foo('ticket') });
    expect(broker.transactions).toHaveLength(4);
    for (const message of broker.transactions) expect(message.content).toEqual({ transactionId: done.uuid });
    expect(done.transaction).toMatchObject({ phase: null, reserve: { ok: true }, commit: { ok: true } });
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute_commit_without_autocommit
  it('test_execute_commit_without_autocommit: no commit message is sent; the execution waits for the decision', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(TWO_REMOTE, { autocommit: false });
    await reply(manager, broker, 0, foo('order'), ['ticket']);
    await reply(manager, broker, 1, foo('ticket'), ['ticket']);
    const waiting = await running;
    // Departure ("execute(autocommit=False) ends finished"): it waits in awaiting-commit, paused.
    expect(waiting.status).toBe(SagaStatus.Paused);
    expect(waiting.awaitingCommit).toBe(true);
    expect(waiting.context.toJSON()).toEqual({ order: foo('order'), ticket: foo('ticket') });
    expect(broker.transactions).toEqual([]);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_execute_commit_raises
  it('test_execute_commit_raises: a commit that fails errors the execution (SagaFailedCommitError) and compensates the steps', async () => {
    const broker = new ManualBroker({ transactions: 'manual' });
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(TWO_REMOTE);
    running.catch(() => undefined);
    await reply(manager, broker, 0, foo('order1'), ['ticket']);
    await reply(manager, broker, 1, foo('order2'), ['ticket']);
    // minos patches TransactionCommitter.commit to raise; here a service fails its reserve (500).
    await answerTransactions(broker, 'reserve', 2, (r) => (r.target === 'ticket' ? [500, { error: 'ValueError' }] : [200, { vote: 'yes' }]));
    await reply(manager, broker, 2, {});
    await answerTransactions(broker, 'reject', 2);
    const error = await running.then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedCommitError);
    const execution = (error as SagaFailedCommitError).execution;
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(execution.error).toMatchObject({ step: null, code: 'SAGA_COMMIT_FAILED' });
    // minos: 1 message, step 1's compensation. Departure ("a failed reserve rejects first and
    // compensates after" → compensations first, then reject, as every other rollback).
    expect(sent(broker.requests.slice(2))).toEqual([['compensate', 'order.delete']]);
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'order'],
      ['reserve', 'ticket'],
      ['reject', 'order'],
      ['reject', 'ticket'],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_commit_raises
  it('test_commit_raises: commit() of an execution that has not finished its steps is refused', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    // minos's execution is only created; one is always started here, so it is paused at step 1.
    const execution = await manager.run(TWO_REMOTE, { pauseOnDisk: true });
    await expect(execution.commit()).rejects.toBeInstanceOf(SagaInvalidStateError);
    await expect(manager.commit(execution.uuid)).rejects.toMatchObject({ code: 'SAGA_INVALID_STATE' });
    expect(broker.transactions).toEqual([]);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_rollback
  it('test_rollback: rolling back a paused execution compensates the executed step and rejects (3 messages); a second time sends nothing', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(TWO_REMOTE, { pauseOnDisk: true });
    await respond(manager, broker.requests[0]!, foo('order1'), ['ticket']);
    // Departure ("rollback() of an execution paused mid-flight is refused" → abort()): rollback()
    // is for the commit decision; abort() stops a paused execution and rolls it back.
    await expect(manager.rollback(execution.uuid)).rejects.toBeInstanceOf(SagaInvalidStateError);
    const aborting = manager.abort(execution.uuid);
    await reply(manager, broker, 2, {});
    const aborted = await aborting;
    // minos: 3 messages: step 1's compensation and a reject per service.
    expect(sent(broker.requests.slice(2))).toEqual([['compensate', 'order.delete']]);
    expect(sent(broker.transactions)).toEqual([
      ['reject', 'order'],
      ['reject', 'ticket'],
    ]);
    expect(aborted.status).toBe(SagaStatus.Errored);
    expect(aborted.error).toMatchObject({ code: 'SAGA_ABORTED' });
    expect(aborted.alreadyRollback).toBe(true);
    // minos: a second rollback() raises SagaRollbackExecutionException and sends nothing. Here a
    // repeated abort answers the same (README: "A second call answers the same") and sends nothing.
    const again = await manager.abort(execution.uuid);
    expect(again.toJSON()).toEqual(aborted.toJSON());
    expect(broker.requests).toHaveLength(3);
    expect(broker.transactions).toHaveLength(2);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_rollback_without_autoreject
  it('test_rollback_without_autoreject: without the transactions to reject, the rollback sends the compensation only (1 message)', async () => {
    // Departure ("rollback(autoreject=True) compensates, then rejects" → both compensate, then
    // reject; there is no autoreject=False): a saga defined with twoPhaseCommit: false has no
    // transactions to reject.
    const saga = new Saga('no-autoreject', { twoPhaseCommit: false })
      .remoteStep()
      .onExecute(sendCreateOrder)
      .onSuccess(handleOrderSuccess)
      .onFailure(sendDeleteOrder)
      .remoteStep()
      .onExecute(sendCreateTicket)
      .onSuccess(handleTicketSuccess)
      .commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(saga, { pauseOnDisk: true });
    await respond(manager, broker.requests[0]!, foo('order1'), ['ticket']);
    const aborting = manager.abort(execution.uuid);
    await reply(manager, broker, 2, {});
    await aborting;
    expect(sent(broker.requests.slice(2))).toEqual([['compensate', 'order.delete']]);
    expect(broker.transactions).toEqual([]);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution::test_rollback_raises
  it('test_rollback_raises: a compensation that cannot be sent makes the rollback throw', async () => {
    const broker = new ThrowingBroker(['compensate']);
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(TWO_REMOTE, { pauseOnDisk: true });
    await respond(manager, broker.requests[0]!, foo('order1'), ['ticket']);
    const error = await manager.abort(execution.uuid).then(() => null, (err: unknown) => err);
    // minos: SagaRollbackExecutionException. Departure ("a compensation that fails leaves the
    // step's status as it was"): the step is errored-on-failure and the error names it.
    expect(error).toBeInstanceOf(SagaRollbackError);
    expect((error as SagaRollbackError).steps).toEqual(['step-1']);
    const failed = stepOf((error as SagaRollbackError).execution, 'step-1');
    expect(failed.status).toBe(SagaStepStatus.ErroredOnFailure);
    expect(failed.compensation?.error).toMatchObject({ code: 'SAGA_BROKER_FAILED' });
    expect(sent(broker.refused)).toEqual([['compensate', 'order.delete']]);
  });
});

describe('minos test_executions/test_saga/test_raw.py', () => {
  /** A manager on a repository a second manager can read, as minos's from_raw reads a raw execution. */
  function twoManagers() {
    const repository = new InMemorySagaRepository();
    const broker = new ManualBroker();
    const first = managerWith({ broker, repository, sagas: [ADD_ORDER], logger: quiet() });
    const second = managerWith({ broker: new ManualBroker(), repository, sagas: [ADD_ORDER], logger: quiet() });
    return { broker, first, second };
  }

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_from_raw
  it('test_from_raw: an execution read back from where it is stored equals the one that was stored (with a user)', async () => {
    const { first, second } = twoManagers();
    const user = randomUUID();
    const expected = await first.run(ADD_ORDER, { pauseOnDisk: true, user });
    const observed = await second.get(expected.uuid);
    expect(observed.toJSON()).toEqual(expected.toJSON());
    expect(observed.user).toBe(user);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_from_raw_without_user
  it('test_from_raw_without_user: the same without a user', async () => {
    const { first, second } = twoManagers();
    const expected = await first.run(ADD_ORDER, { pauseOnDisk: true });
    const observed = await second.get(expected.uuid);
    expect(observed.toJSON()).toEqual(expected.toJSON());
    expect(observed.user).toBeNull();
  });

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_created
  it('test_created: a new execution is created, with an empty context, no step run, none paused, no rollback', () => {
    const uuid = 'a74d9d6d-290a-492e-afcc-70607958f65d';
    const snapshot = createSagaActor(ADD_ORDER, { uuid }).getSnapshot();
    expect(sagaStatusOf(snapshot)).toBe(SagaStatus.Created);
    expect(snapshot.context).toMatchObject({ uuid, sagaName: 'add-order', data: {}, failure: null });
    const steps = stepViews(ADD_ORDER, snapshot);
    expect(steps.map((s) => [s.path, s.kind, s.status, s.compensation])).toEqual([
      ['step-1', 'remote', SagaStepStatus.Created, null],
      ['step-2', 'local', SagaStepStatus.Created, null],
      ['step-3', 'remote', SagaStepStatus.Created, null],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_created_without_user
  it('test_created_without_user: an execution run without a user has none; with one, it keeps it', async () => {
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    expect((await manager.run(ADD_ORDER, { pauseOnDisk: true })).user).toBeNull();
    const user = randomUUID();
    expect((await manager.run(ADD_ORDER, { pauseOnDisk: true, user })).user).toBe(user);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_partial_step
  it('test_partial_step: paused at its first step (paused-by-on-execute), none executed; read back equal', async () => {
    const { first, second } = twoManagers();
    const user = randomUUID();
    const expected = await first.run(ADD_ORDER, { pauseOnDisk: true, user });
    expect(expected.status).toBe(SagaStatus.Paused);
    expect(expected.pausedStep).toBe('step-1');
    expect(expected.alreadyRollback).toBe(false);
    expect(rows(expected)).toEqual([
      ['step-1', SagaStepStatus.PausedByOnExecute, false],
      ['step-2', SagaStepStatus.Created, false],
      ['step-3', SagaStepStatus.Created, false],
    ]);
    expect(expected.context.toJSON()).toEqual({});
    expect((await second.get(expected.uuid)).toJSON()).toEqual(expected.toJSON());
  });

  // minos: tests/test_saga/test_executions/test_saga/test_raw.py::TestSagaExecution::test_executed_step
  it('test_executed_step: two steps finished, the third paused, the context and the services that took part; read back equal', async () => {
    const { broker, first, second } = twoManagers();
    const user = randomUUID();
    const started = await first.run(ADD_ORDER, { pauseOnDisk: true, user });
    const expected = await respond(first, broker.requests[0]!, foo('hola'), ['ticket']);
    expect(expected.status).toBe(SagaStatus.Paused);
    expect(expected.pausedStep).toBe('step-3');
    expect(rows(expected)).toEqual([
      ['step-1', SagaStepStatus.Finished, false],
      ['step-2', SagaStepStatus.Finished, false],
      ['step-3', SagaStepStatus.PausedByOnExecute, false],
    ]);
    expect(expected.context.toJSON()).toEqual({ order: foo('hola'), payment: 'payment' });
    // minos: related_services ["ticket", "order"]; departure ("the saga's own service takes part"):
    // here the target of step 1 (order) and the related service of its response (ticket).
    expect(expected.services).toEqual(['order', 'ticket']);
    const observed = await second.get(started.uuid);
    expect(observed.toJSON()).toEqual(expected.toJSON());
  });
});

describe('minos test_executions/test_saga/test_constructor.py', () => {
  // minos: tests/test_saga/test_executions/test_saga/test_constructor.py::TestSagaExecutionConstructor::test_from_definition
  it('test_from_definition: a new execution of a definition has a uuid, an empty context, status created, no rollback, no paused step', () => {
    const snapshot = createSagaActor(ADD_ORDER).getSnapshot();
    expect(snapshot.context.sagaName).toBe(ADD_ORDER.name);
    expect(snapshot.context.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(snapshot.context.data).toEqual({});
    expect(sagaStatusOf(snapshot)).toBe(SagaStatus.Created);
    const steps = stepViews(ADD_ORDER, snapshot);
    expect(steps.some((s) => s.compensation !== null || s.compensated)).toBe(false);
    expect(steps.some((s) => s.status === SagaStepStatus.PausedByOnExecute || s.status === SagaStepStatus.PausedOnFailure)).toBe(false);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_constructor.py::TestSagaExecutionConstructor::test_from_saga_raises
  it('test_from_saga_raises: a saga without steps cannot be executed (EmptySagaError)', async () => {
    // minos raises EmptySagaException when the execution is made; here commit() refuses the
    // empty saga already (README, error codes: SAGA_EMPTY "a saga committed without steps"), and
    // an uncommitted saga cannot be run.
    expect(() => new Saga('empty').commit()).toThrow(EmptySagaError);
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    await expect(manager.run(new Saga('empty-uncommitted'))).rejects.toBeInstanceOf(SagaNotCommittedError);
  });

  // minos: tests/test_saga/test_executions/test_saga/test_constructor.py::TestSagaExecutionConstructor::test_from_saga_with_context
  it('test_from_saga_with_context: the execution starts with the context given', () => {
    const context = { foo: foo('foo'), one: 1, a: 'a' };
    const snapshot = createSagaActor(ADD_ORDER, { context }).getSnapshot();
    expect(snapshot.context.data).toEqual(context);
    expect(sagaStatusOf(snapshot)).toBe(SagaStatus.Created);
    expect(stepViews(ADD_ORDER, snapshot).every((s) => s.compensation === null)).toBe(true);
  });
});

describe('minos test_executions/test_commit.py (TransactionCommitter)', () => {
  // minos's executed steps: a remote step of "foo", a local step, a conditional step whose inner
  // execution ran remote steps of "foo" and "foobar", and a conditional step that ran nothing.
  const inner = new Saga('inner').remoteStep().onExecute(() => new SagaRequest('foo.inner', {})).remoteStep().onExecute(() => new SagaRequest('foobar.inner', {})).commit();
  const never = new Saga('never').localStep().onExecute(() => undefined).commit();
  const COMMITTER = new Saga('committer')
    .remoteStep()
    .onExecute(() => new SagaRequest('foo.do', {}))
    .localStep()
    .onExecute(() => undefined)
    .conditionalStep()
    .ifThen(() => true, inner)
    .conditionalStep()
    .ifThen(() => false, never)
    .commit();

  async function runCommitter(broker: ManualBroker, options: { autocommit?: boolean } = {}) {
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(COMMITTER, { raiseOnError: false, ...options });
    await reply(manager, broker, 0, {});
    await reply(manager, broker, 1, {});
    await reply(manager, broker, 2, {});
    return { manager, running };
  }

  // minos: tests/test_saga/test_executions/test_commit.py::TestTransactionCommitter::test_transactions
  it('test_transactions: one transaction per service that took part, the conditional step’s inner steps included, under the execution’s uuid', async () => {
    const broker = new ManualBroker();
    const { running } = await runCommitter(broker, { autocommit: false });
    const waiting = await running;
    // minos: [(uuid, "bar"), (uuid, "foo"), (uuid, "foobar")], "bar" being the orchestrator's own
    // service. Departure ("the saga's own service takes part in the commit, and a conditional
    // step's inner saga is a transaction of its own"): the services of the requests, one transaction id.
    expect(waiting.services).toEqual(['foo', 'foobar']);
    expect(waiting.transaction.id).toBe(waiting.uuid);
    expect(rows(waiting).map(([path, status]) => [path, status])).toEqual([
      ['step-1', SagaStepStatus.Finished],
      ['step-2', SagaStepStatus.Finished],
      ['step-3', SagaStepStatus.Finished],
      ['step-3/inner/step-1', SagaStepStatus.Finished],
      ['step-3/inner/step-2', SagaStepStatus.Finished],
      ['step-4', SagaStepStatus.Finished],
    ]);
    expect(stepOf(waiting, 'step-4').branch).toBeNull();
  });

  // minos: tests/test_saga/test_executions/test_commit.py::TestTransactionCommitter::test_commit_true
  it('test_commit_true: every service is asked to reserve, then, all having voted yes, to commit', async () => {
    const broker = new ManualBroker({ transactions: 'manual' });
    const { running } = await runCommitter(broker);
    await answerTransactions(broker, 'reserve', 2);
    await answerTransactions(broker, 'commit', 2);
    const done = await running;
    expect(done.status).toBe(SagaStatus.Finished);
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'foo'],
      ['reserve', 'foobar'],
      ['commit', 'foo'],
      ['commit', 'foobar'],
    ]);
    for (const message of broker.transactions) expect(message.content).toEqual({ transactionId: done.uuid });
  });

  // minos: tests/test_saga/test_executions/test_commit.py::TestTransactionCommitter::test_commit_false
  it('test_commit_false: a service that votes no fails the commit, and every service is told to reject', async () => {
    const broker = new ManualBroker({ transactions: 'manual' });
    const { running } = await runCommitter(broker);
    await answerTransactions(broker, 'reserve', 2, (r) => (r.target === 'foo' ? [400, { vote: 'no' }] : [200, { vote: 'yes' }]));
    await answerTransactions(broker, 'reject', 2);
    const failed = await running;
    // minos: commit() raises ValueError; run() with raiseOnError throws SagaFailedCommitError.
    expect(failed.status).toBe(SagaStatus.Errored);
    expect(failed.error).toMatchObject({ code: 'SAGA_COMMIT_FAILED' });
    expect(failed.transaction.reserve?.refusal).toMatchObject({ service: 'foo', code: 'SAGA_COMMIT_REFUSED' });
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'foo'],
      ['reserve', 'foobar'],
      ['reject', 'foo'],
      ['reject', 'foobar'],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_commit.py::TestTransactionCommitter::test_reject
  it('test_reject: rejecting tells every service to reject its transaction', async () => {
    const broker = new ManualBroker();
    const { running } = await runCommitter(broker, { autocommit: false });
    const waiting = await running;
    const rejected = await waiting.reject();
    expect(sent(broker.transactions)).toEqual([
      ['reject', 'foo'],
      ['reject', 'foobar'],
    ]);
    for (const message of broker.transactions) expect(message.content).toEqual({ transactionId: waiting.uuid });
    // Departures ("reject() only tells the participants to reject" → both compensate, then reject;
    // "rollback() at the decision leaves the status alone" → errored, SAGA_REJECTED). These steps
    // have no compensations, so only the rejects are sent.
    expect(rejected.status).toBe(SagaStatus.Errored);
    expect(rejected.error).toMatchObject({ step: null, code: 'SAGA_REJECTED' });
  });
});

describe('minos test_executions/test_status.py', () => {
  // minos: tests/test_saga/test_executions/test_status.py::TestSagaStatus::test_from_raw
  it('TestSagaStatus::test_from_raw: the status "finished" is SagaStatus.Finished', () => {
    expect(SagaStatus.Finished).toBe('finished');
    expect(Object.values(SagaStatus)).toContain('finished');
  });

  // minos: tests/test_saga/test_executions/test_status.py::TestSagaStepStatus::test_from_raw
  it('TestSagaStepStatus::test_from_raw: the step status "finished" is SagaStepStatus.Finished', () => {
    expect(SagaStepStatus.Finished).toBe('finished');
    expect(Object.values(SagaStepStatus)).toContain('finished');
  });
});

describe('minos test_executions/test_steps/test_abc.py', () => {
  // minos: tests/test_saga/test_executions/test_steps/test_abc.py::TestSagaStepExecution::test_from_definition
  it('test_from_definition: each step of an execution is of its definition’s kind', () => {
    const steps = stepViews(ADD_ORDER, createSagaActor(ADD_ORDER).getSnapshot());
    expect(steps.map((s) => s.kind)).toEqual(ADD_ORDER.steps.map((s) => s.kind));
    expect(steps.map((s) => s.kind)).toEqual(['remote', 'local', 'remote']);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_abc.py::TestSagaStepExecution::test_raw
  it('test_raw: a remote step not run yet is created, with no rollback and no attempt', async () => {
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const execution = await manager.run(ADD_ORDER, { pauseOnDisk: true });
    expect(stepOf(execution, 'step-3')).toMatchObject({
      kind: 'remote',
      status: SagaStepStatus.Created,
      compensated: false,
      compensation: null,
      attempts: 0,
      error: null,
    });
  });
});

describe('minos test_executions/test_steps/test_local.py', () => {
  // minos: tests/test_saga/test_executions/test_steps/test_local.py::TestLocalSagaStepExecution::test_execute
  it('test_execute: a local step changes the context and finishes', async () => {
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const done = await manager.run(new Saga('local-execute').localStep().onExecute(createPayment).commit());
    expect(done.context.toJSON()).toEqual({ payment: 'payment' });
    expect(stepOf(done, 'step-1').status).toBe(SagaStepStatus.Finished);
    // minos: related_services is the orchestrator's own service. Departure ("the saga's own
    // service takes part in the commit"): a local step holds nothing under a transaction here.
    expect(done.services).toEqual([]);
    expect(done.transaction.reserve).toBeUndefined();
  });

  // minos: tests/test_saga/test_executions/test_steps/test_local.py::TestLocalSagaStepExecution::test_execute_raises
  it('test_execute_raises: on_execute raising errors the step (errored-on-execute) without running its own compensation', async () => {
    let compensations = 0;
    const saga = new Saga('local-raises')
      .localStep()
      .onExecute(createPaymentRaises)
      .onFailure((ctx) => {
        compensations++;
        return deletePayment(ctx);
      })
      .commit();
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const error = await manager.run(saga).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    const execution = (error as SagaFailedExecutionError).execution;
    expect(stepOf(execution, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnExecute, compensated: false, compensation: null });
    expect(execution.context.toJSON()).toEqual({});
    expect(compensations).toBe(0);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_local.py::TestLocalSagaStepExecution::test_execute_already
  it('test_execute_already: a finished local step is not run again when its execution goes on', async () => {
    let calls = 0;
    const saga = new Saga('local-already')
      .localStep()
      .onExecute(() => {
        calls++;
      })
      .remoteStep()
      .onExecute(sendCreateOrder)
      .commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    // Paused on disk: the execution is dropped from memory and restored by the response.
    const paused = await manager.run(saga, { pauseOnDisk: true });
    expect(calls).toBe(1);
    await respond(manager, broker.requests[0]!, {});
    expect((await manager.waitFor(paused.uuid)).status).toBe(SagaStatus.Finished);
    expect(calls).toBe(1);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_local.py::TestLocalSagaStepExecution::test_rollback
  it('test_rollback: on_failure undoes the step (payment: null); the step cannot be rolled back twice', async () => {
    let compensations = 0;
    const saga = new Saga('local-rollback')
      .localStep()
      .onExecute(createPayment)
      .onFailure((ctx) => {
        compensations++;
        return deletePayment(ctx);
      })
      .localStep()
      .onExecute(createPaymentRaises)
      .commit();
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const execution = await manager.run(saga, { raiseOnError: false });
    expect(execution.context.toJSON()).toEqual({ payment: null });
    expect(stepOf(execution, 'step-1')).toMatchObject({ status: SagaStepStatus.Finished, compensated: true });
    expect(compensations).toBe(1);
    // minos: a second rollback() raises SagaRollbackExecutionStepException; here retrying a
    // compensation that did not fail is refused (SAGA_INVALID_STATE), and nothing runs again.
    await expect(manager.retryCompensation(execution.uuid, 'step-1')).rejects.toBeInstanceOf(SagaInvalidStateError);
    await expect(manager.abort(execution.uuid)).rejects.toBeInstanceOf(SagaInvalidStateError);
    expect(compensations).toBe(1);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_local.py::TestLocalSagaStepExecution::test_rollback_raises
  it('test_rollback_raises: a local step that never ran has nothing to roll back: its on_failure does not run', async () => {
    let compensations = 0;
    const saga = new Saga('local-nothing')
      .localStep()
      .onExecute(createPaymentRaises)
      .localStep()
      .onExecute(createPayment)
      .onFailure((ctx) => {
        compensations++;
        return createPaymentRaises(ctx);
      })
      .commit();
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const execution = await manager.run(saga, { raiseOnError: false });
    expect(stepOf(execution, 'step-2')).toMatchObject({ status: SagaStepStatus.Created, compensated: false, compensation: null });
    expect(compensations).toBe(0);
  });
});

describe('minos test_executions/test_steps/test_remote.py', () => {
  /** A saga of one remote step (sagachart needs a saga around a step), run until it waits for its answer. */
  async function pausedAt(build: (step: RemoteSagaStep<Record<string, unknown>>) => unknown, options: { twoPhaseCommit?: boolean } = {}) {
    const saga = new Saga(`remote-${randomUUID().slice(0, 8)}`, options);
    build(saga.remoteStep().onExecute(sendCreateTicket));
    saga.commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(saga, { pauseOnDisk: true });
    return { broker, manager, execution };
  }

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_execute
  it('test_on_execute: the step sends its request and waits (paused-by-on-execute), without rolling back', async () => {
    const { broker, execution } = await pausedAt(() => undefined);
    expect(sent(broker.requests)).toEqual([['execute', 'ticket.create']]);
    expect(stepOf(execution, 'step-1')).toMatchObject({ status: SagaStepStatus.PausedByOnExecute, compensation: null });
    expect(execution.alreadyRollback).toBe(false);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_execute_raises
  it('test_on_execute_raises: on_execute raising errors the step (errored-on-execute); nothing is sent, not even its compensation', async () => {
    const saga = new Saga('remote-on-execute-raises').remoteStep().onExecute(sendCreateTicketRaises).onFailure(sendDeleteTicket).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const error = await manager.run(saga).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    expect(stepOf((error as SagaFailedExecutionError).execution, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnExecute, compensation: null });
    expect(broker.requests).toEqual([]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_errored_response
  it('test_errored_response: a 500 errors the step (errored-by-on-execute) without rolling it back', async () => {
    // An on_failure is added so that "not rolled back" can be seen: no compensation is sent.
    const { broker, manager, execution } = await pausedAt((step) => step.onFailure(sendDeleteTicket));
    await respond(manager, broker.requests[0]!, null, ['ticket'], SagaResponseStatus.SYSTEM_ERROR);
    const failed = await manager.waitFor(execution.uuid);
    expect(failed.status).toBe(SagaStatus.Errored);
    expect(stepOf(failed, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredByOnExecute, compensation: null, error: { code: 'SAGA_PARTICIPANT_SYSTEM_ERROR' } });
    expect(sent(broker.requests)).toEqual([['execute', 'ticket.create']]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_success
  it('test_on_success: a 200 runs on_success and finishes the step; the response’s related services take part', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onSuccess(handleTicketSuccess));
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket']);
    const done = await manager.waitFor(execution.uuid);
    expect(stepOf(done, 'step-1').status).toBe(SagaStepStatus.Finished);
    expect(done.context.toJSON()).toEqual({ ticket: foo('foo') });
    // minos: {"ticket", "order"}, "order" being the orchestrator's own service (departure: "the
    // saga's own service takes part in the commit").
    expect(done.services).toEqual(['ticket']);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_success_not_defined
  it('test_on_success_not_defined: a 200 without on_success finishes the step, without rolling back', async () => {
    const { broker, manager, execution } = await pausedAt(() => undefined);
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket']);
    const done = await manager.waitFor(execution.uuid);
    expect(stepOf(done, 'step-1')).toMatchObject({ status: SagaStepStatus.Finished, compensation: null });
    expect(done.services).toEqual(['ticket']);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_success_raises
  it('test_on_success_raises: on_success raising errors the step (errored-on-success) and rolls it back once', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onSuccess(handleTicketSuccessRaises).onFailure(sendDeleteTicket));
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket']);
    await reply(manager, broker, 1, {});
    const failed = await manager.waitFor(execution.uuid);
    expect(stepOf(failed, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnSuccess, compensated: true });
    expect(sent(broker.requests)).toEqual([
      ['execute', 'ticket.create'],
      ['compensate', 'ticket.create'],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_error
  it('test_on_error: a 400 runs on_error, which returns the context: the step finishes, without rolling back', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onError(handleTicketError).onFailure(sendDeleteTicket));
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket'], SagaResponseStatus.ERROR);
    const done = await manager.waitFor(execution.uuid);
    expect(done.status).toBe(SagaStatus.Finished);
    expect(stepOf(done, 'step-1')).toMatchObject({ status: SagaStepStatus.Finished, compensation: null });
    expect(done.context.toJSON()).toEqual({ ticket: null });
    expect(done.services).toEqual(['ticket']);
    expect(broker.requests).toHaveLength(1);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_error_not_defined
  it('test_on_error_not_defined: a 400 without on_error fails the step (departure)', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onFailure(sendDeleteTicket));
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket'], SagaResponseStatus.ERROR);
    const failed = await manager.waitFor(execution.uuid);
    // minos: the step finishes. Departure ("a 400 without an on_error handler finishes the step
    // and the saga goes on" → the step fails, SAGA_PARTICIPANT_REJECTED, and the saga rolls back);
    // the step itself is not compensated (README: "the steps before it").
    expect(failed.status).toBe(SagaStatus.Errored);
    expect(stepOf(failed, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredByOnExecute, compensation: null, error: { code: 'SAGA_PARTICIPANT_REJECTED' } });
    expect(failed.services).toEqual(['ticket']);
    expect(broker.requests).toHaveLength(1);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_on_error_raises
  it('test_on_error_raises: on_error raising errors the step (errored-on-error) and rolls it back once', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onError(handleTicketErrorRaises).onFailure(sendDeleteTicket));
    await respond(manager, broker.requests[0]!, foo('foo'), ['ticket'], SagaResponseStatus.ERROR);
    await reply(manager, broker, 1, {});
    const failed = await manager.waitFor(execution.uuid);
    expect(stepOf(failed, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnError, compensated: true });
    expect(sent(broker.requests)).toEqual([
      ['execute', 'ticket.create'],
      ['compensate', 'ticket.create'],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_rollback
  it('test_rollback: rolling back a paused remote step sends its compensation once; a second time sends nothing', async () => {
    const { broker, manager, execution } = await pausedAt((step) => step.onFailure(sendDeleteTicket));
    // Departure ("rollback() of an execution paused mid-flight is refused" → abort(), which
    // compensates the step it waits on).
    const aborting = manager.abort(execution.uuid);
    await reply(manager, broker, 1, {});
    const aborted = await aborting;
    expect(sent(broker.requests.slice(1))).toEqual([['compensate', 'ticket.create']]);
    expect(broker.requests[1]!.content).toEqual(foo('delete_ticket!'));
    expect(stepOf(aborted, 'step-1').compensated).toBe(true);
    // minos: a second rollback raises SagaRollbackExecutionStepException and publishes nothing;
    // here a repeated abort answers the same (README: "A second call answers the same").
    expect((await manager.abort(execution.uuid)).toJSON()).toEqual(aborted.toJSON());
    expect(broker.requests).toHaveLength(2);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_remote.py::TestRemoteSagaStepExecution::test_rollback_raises
  it('test_rollback_raises: a remote step that never ran has nothing to roll back: no request and no compensation of it is sent', async () => {
    const saga = new Saga('remote-nothing').localStep().onExecute(createPaymentRaises).remoteStep().onExecute(sendCreateTicket).onFailure(sendDeleteTicket).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(saga, { raiseOnError: false });
    expect(stepOf(execution, 'step-2')).toMatchObject({ status: SagaStepStatus.Created, compensation: null });
    expect(broker.requests).toEqual([]);
  });
});

describe('minos test_executions/test_steps/test_conditional.py', () => {
  // minos's setUp: if option == 1, a saga creating the order; else, one whose on_success raises.
  const isOne = (ctx: SagaContext<Record<string, unknown>>) => ctx.get('option') === 1;
  const ONE = new Saga('is-one').remoteStep().onExecute(sendCreateOrder).onSuccess(handleOrderSuccess).commit();
  const OTHER = new Saga('otherwise').remoteStep().onExecute(sendCreateOrder).onSuccess(handleTicketSuccessRaises).onFailure(sendDeleteTicket).commit();
  const CONDITIONAL = new Saga('conditional').conditionalStep().ifThen(isOne, ONE).elseThen(OTHER).commit();

  function setUp() {
    const repository = new InMemorySagaRepository();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, repository, sagas: [CONDITIONAL], logger: quiet() });
    return { broker, manager, repository };
  }

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_execute
  it('test_execute: the branch that holds runs nested: paused at its remote step, then finished; no commit of its own', async () => {
    const { broker, manager } = setUp();
    const paused = await manager.run(CONDITIONAL, { context: { option: 1 }, pauseOnDisk: true });
    expect(stepOf(paused, 'step-1')).toMatchObject({ status: SagaStepStatus.PausedByOnExecute, branch: 'is-one' });
    expect(paused.context.toJSON()).toEqual({ option: 1 });
    expect(paused.services).toEqual(['order']);

    await respond(manager, broker.requests[0]!, foo('order'), ['order']);
    const done = await manager.waitFor(paused.uuid);
    expect(stepOf(done, 'step-1').status).toBe(SagaStepStatus.Finished);
    expect(stepOf(done, 'step-1/is-one/step-1').status).toBe(SagaStepStatus.Finished);
    expect(done.context.toJSON()).toEqual({ option: 1, order: foo('order') });
    // minos: the inner execution's commit is not called; the execution's one commit covers the branch.
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'order'],
      ['commit', 'order'],
    ]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_execute_raises_step
  it('test_execute_raises_step: a branch whose step fails errors the conditional step (errored-by-on-execute) and rolls the branch back once', async () => {
    const { broker, manager } = setUp();
    const paused = await manager.run(CONDITIONAL, { context: { option: 2 }, pauseOnDisk: true });
    expect(stepOf(paused, 'step-1')).toMatchObject({ status: SagaStepStatus.PausedByOnExecute, branch: 'otherwise' });
    expect(paused.context.toJSON()).toEqual({ option: 2 });

    await respond(manager, broker.requests[0]!, foo('ticket'), ['ticket']);
    await reply(manager, broker, 1, {});
    const failed = await manager.waitFor(paused.uuid);
    expect(stepOf(failed, 'step-1').status).toBe(SagaStepStatus.ErroredByOnExecute);
    expect(stepOf(failed, 'step-1/otherwise/step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnSuccess, compensated: true });
    expect(failed.context.toJSON()).toEqual({ option: 2 });
    // minos: the inner execution's rollback is called once.
    expect(sent(broker.requests.slice(1))).toEqual([['compensate', 'ticket.create']]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_execute_empty
  it('test_execute_empty: a conditional step without branches is refused (departure); one whose conditions all fail finishes, context unchanged', async () => {
    // Departure ("a conditional step without branches is accepted" → refused when the saga is
    // committed, SAGA_INVALID_DEFINITION).
    const empty = new Saga('conditional-empty');
    empty.conditionalStep();
    expect(() => empty.commit()).toThrow(InvalidSagaDefinitionError);
    // What minos's empty step does, finishing without changing the context, a step does here when none of its branches holds.
    const none = new Saga('conditional-none').conditionalStep().ifThen(() => false, ONE).commit();
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const done = await manager.run(none, { context: { one: 1 } });
    expect(done.context.toJSON()).toEqual({ one: 1 });
    expect(stepOf(done, 'step-1')).toMatchObject({ status: SagaStepStatus.Finished, branch: null });
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_rollback
  it('test_rollback: rolling back a finished conditional step rolls its branch back; the branch commits and rejects nothing of its own', async () => {
    const saga = new Saga('conditional-rollback').conditionalStep().ifThen(isOne, new Saga('one-undo').remoteStep().onExecute(sendCreateOrder).onSuccess(handleOrderSuccess).onFailure(sendDeleteOrder).commit()).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga, { context: { option: 1 }, autocommit: false });
    await reply(manager, broker, 0, foo('order'), ['order']);
    const waiting = await running;
    expect(stepOf(waiting, 'step-1').status).toBe(SagaStepStatus.Finished);
    const rollingBack = waiting.rollback();
    await reply(manager, broker, 1, {});
    const rolledBack = await rollingBack;
    expect(sent(broker.requests.slice(1))).toEqual([['compensate', 'order.delete']]);
    expect(stepOf(rolledBack, 'step-1/one-undo/step-1').compensated).toBe(true);
    // One reject for the execution's transaction, none for the branch, and no commit.
    expect(sent(broker.transactions)).toEqual([['reject', 'order']]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_rollback_raises_create
  it('test_rollback_raises_create: a conditional step that never ran has nothing to roll back', async () => {
    const saga = new Saga('conditional-not-run').localStep().onExecute(createPaymentRaises).conditionalStep().ifThen(isOne, ONE).elseThen(OTHER).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(saga, { context: { option: 1 }, raiseOnError: false });
    expect(stepOf(execution, 'step-2')).toMatchObject({ status: SagaStepStatus.Created, branch: null, compensation: null });
    expect(broker.requests).toEqual([]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_rollback_raises_already
  it('test_rollback_raises_already: a paused conditional step is rolled back once; a second time does nothing more', async () => {
    const { broker, manager } = setUp();
    const paused = await manager.run(CONDITIONAL, { context: { option: 1 }, pauseOnDisk: true });
    // Departure ("rollback() of an execution paused mid-flight is refused" → abort()).
    const aborted = await manager.abort(paused.uuid);
    expect(aborted.status).toBe(SagaStatus.Errored);
    expect(aborted.error).toMatchObject({ code: 'SAGA_ABORTED' });
    expect(stepOf(aborted, 'step-1/is-one/step-1').error).toMatchObject({ code: 'SAGA_ABORTED' });
    // minos: a second rollback raises SagaRollbackExecutionStepException; here a repeated abort
    // answers the same (README: "A second call answers the same") and sends nothing.
    const requests = broker.requests.length;
    const transactions = broker.transactions.length;
    expect((await manager.abort(paused.uuid)).toJSON()).toEqual(aborted.toJSON());
    expect([broker.requests.length, broker.transactions.length]).toEqual([requests, transactions]);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_raw_created
  it('test_raw_created: before it runs, the conditional step is created, with no branch chosen and no rollback', () => {
    const [step] = stepViews(CONDITIONAL, createSagaActor(CONDITIONAL).getSnapshot());
    expect(step).toMatchObject({ path: 'step-1', kind: 'conditional', status: SagaStepStatus.Created, branch: null, compensation: null });
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_raw_paused
  it('test_raw_paused: paused in its branch: the branch’s step is the paused step, under the execution’s uuid and user', async () => {
    const { manager } = setUp();
    const user = randomUUID();
    const paused = await manager.run(CONDITIONAL, { context: { option: 1 }, pauseOnDisk: true, user });
    expect(paused.status).toBe(SagaStatus.Paused);
    expect(paused.pausedStep).toBe('step-1/is-one/step-1');
    expect(rows(paused)).toEqual([
      ['step-1', SagaStepStatus.PausedByOnExecute, false],
      ['step-1/is-one/step-1', SagaStepStatus.PausedByOnExecute, false],
    ]);
    expect(stepOf(paused, 'step-1/is-one/step-1').parent).toBe('step-1');
    expect(paused.alreadyRollback).toBe(false);
    expect(paused.context.toJSON()).toEqual({ option: 1 });
    expect(paused.user).toBe(user);
    expect(paused.services).toEqual(['order']);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_raw_finished
  it('test_raw_finished: finished, with its branch’s step finished and the context it left', async () => {
    const { broker, manager } = setUp();
    const paused = await manager.run(CONDITIONAL, { context: { option: 1 }, pauseOnDisk: true, autocommit: false });
    await respond(manager, broker.requests[0]!, foo('order'), ['order']);
    const waiting = await manager.get(paused.uuid);
    expect(rows(waiting)).toEqual([
      ['step-1', SagaStepStatus.Finished, false],
      ['step-1/is-one/step-1', SagaStepStatus.Finished, false],
    ]);
    expect(waiting.pausedStep).toBeNull();
    expect(waiting.context.toJSON()).toEqual({ option: 1, order: foo('order') });
    expect(waiting.services).toEqual(['order']);
  });

  // minos: tests/test_saga/test_executions/test_steps/test_conditional.py::TestConditionalSageStepExecution::test_raw_from_raw
  it('test_raw_from_raw: a paused conditional step read back from where it is stored is equal', async () => {
    const { manager, repository } = setUp();
    const paused = await manager.run(CONDITIONAL, { context: { option: 1 }, pauseOnDisk: true });
    const other = managerWith({ broker: new ManualBroker(), repository, sagas: [CONDITIONAL], logger: quiet() });
    expect((await other.get(paused.uuid)).toJSON()).toEqual(paused.toJSON());
  });
});

describe('minos test_executions/test_executors/', () => {
  // minos: tests/test_saga/test_executions/test_executors/test_abc.py::TestExecutor::test_exec
  it('test_abc.py::test_exec: a synchronous handler’s result is used (a condition reading the context picks its branch)', async () => {
    const saga = new Saga('exec-sync').conditionalStep().ifThen((ctx) => ctx.get('foo') === 'bar', CREATE_PAYMENT).commit();
    const done = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { context: { foo: 'bar' } });
    expect(stepOf(done, 'step-1').branch).toBe('create-payment');
    expect(done.context.toJSON()).toEqual({ foo: 'bar', payment: 'payment' });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_abc.py::TestExecutor::test_exec_async
  it('test_abc.py::test_exec_async: so is an asynchronous handler’s', async () => {
    const saga = new Saga('exec-async').conditionalStep().ifThen(async (ctx) => ctx.get('foo') === 'bar', CREATE_PAYMENT).commit();
    const done = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { context: { foo: 'bar' } });
    expect(stepOf(done, 'step-1').branch).toBe('create-payment');
  });

  // minos: tests/test_saga/test_executions/test_executors/test_local.py::TestLocalExecutor::test_exec
  it('test_local.py::test_exec: the handler’s changes make the new context; the context given is not changed', async () => {
    const initial = { product: foo('create_product!') };
    const done = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(CREATE_PAYMENT, { context: initial });
    expect(done.context.toJSON()).toEqual({ product: foo('create_product!'), payment: 'payment' });
    expect(initial).toEqual({ product: foo('create_product!') });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_local.py::TestLocalExecutor::test_exec_not_defined
  it('test_local.py::test_exec_not_defined: no handler (a local step without on_failure, compensated) leaves the context as it is', async () => {
    const saga = new Saga('exec-not-defined').localStep().onExecute(createPayment).localStep().onExecute(createPaymentRaises).commit();
    const execution = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { context: { product: foo('create_product!') }, raiseOnError: false });
    expect(execution.context.toJSON()).toEqual({ product: foo('create_product!'), payment: 'payment' });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_local.py::TestLocalExecutor::test_exec_return_none
  it('test_local.py::test_exec_return_none: a handler that returns nothing leaves the context as it was', async () => {
    const saga = new Saga('exec-none').localStep().onExecute(async () => undefined).commit();
    const done = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { context: { product: foo('create_product!') } });
    expect(done.context.toJSON()).toEqual({ product: foo('create_product!') });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_local.py::TestLocalExecutor::test_exec_raises
  it('test_local.py::test_exec_raises: a handler that raises fails the step (SAGA_HANDLER_FAILED)', async () => {
    const saga = new Saga('exec-raises').localStep().onExecute(createPaymentRaises).commit();
    const error = await managerWith({ broker: new ManualBroker(), logger: quiet() })
      .run(saga, { context: { product: foo('create_product!') } })
      .then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    expect((error as SagaFailedExecutionError).execution.error).toMatchObject({ step: 'step-1', code: 'SAGA_HANDLER_FAILED' });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_request.py::TestRequestExecutor::test_exec
  it('test_request.py::test_exec: the request built from the context goes to its target with the execution and the user', async () => {
    const user = randomUUID();
    const saga = new Saga('request-exec').remoteStep().onExecute(sendCreateProduct).commit();
    const broker = new ManualBroker();
    const execution = await managerWith({ broker, logger: quiet() }).run(saga, { context: { product: foo('create_product!') }, pauseOnDisk: true, user });
    expect(broker.requests).toHaveLength(1);
    expect(broker.requests[0]).toMatchObject({ target: 'product.create', content: foo('create_product!'), uuid: execution.uuid, user, phase: 'execute' });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_request.py::TestRequestExecutor::test_exec_none_user
  it('test_request.py::test_exec_none_user: without a user, the request carries none', async () => {
    const saga = new Saga('request-no-user').remoteStep().onExecute(sendCreateProduct).commit();
    const broker = new ManualBroker();
    const execution = await managerWith({ broker, logger: quiet() }).run(saga, { context: { product: foo('create_product!') }, pauseOnDisk: true });
    expect(broker.requests[0]).toMatchObject({ target: 'product.create', content: foo('create_product!'), uuid: execution.uuid });
    expect(broker.requests[0]).not.toHaveProperty('user');
  });

  // minos: tests/test_saga/test_executions/test_executors/test_request.py::TestRequestExecutor::test_exec_raises
  it('test_request.py::test_exec_raises: a request the broker cannot send fails the step, saying why', async () => {
    const saga = new Saga('request-raises').remoteStep().onExecute(sendCreateProduct).commit();
    const broker = new ThrowingBroker(['execute'], { message: 'This is an exception' });
    const error = await managerWith({ broker, logger: quiet() })
      .run(saga, { context: { product: foo('create_product!') } })
      .then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    const step = stepOf((error as SagaFailedExecutionError).execution, 'step-1');
    // A send that fails is taken as a 500 answer (README: "a broker that throws fails the attempt").
    expect(step.status).toBe(SagaStepStatus.ErroredByOnExecute);
    expect(step.error).toMatchObject({ code: 'SAGA_BROKER_FAILED', message: expect.stringContaining('This is an exception') });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_response.py::TestResponseExecutor::test_exec
  it('test_response.py::test_exec: a response handler gets the response and changes the context', async () => {
    const saga = new Saga('response-exec').remoteStep().onExecute(sendCreateTicket).onSuccess(handleTicketSuccess).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga, { context: { one: 1 } });
    await reply(manager, broker, 0, foo('text'), ['ticket']);
    expect((await running).context.toJSON()).toEqual({ one: 1, ticket: foo('text') });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_response.py::TestResponseExecutor::test_exec_raises
  it('test_response.py::test_exec_raises: a response handler that raises fails the step', async () => {
    const saga = new Saga('response-raises').remoteStep().onExecute(sendCreateTicket).onError(() => {
      throw new Error('ValueError');
    }).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga, { raiseOnError: false });
    await reply(manager, broker, 0, null, ['ticket'], SagaResponseStatus.ERROR);
    expect(stepOf(await running, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnError, error: { code: 'SAGA_HANDLER_FAILED' } });
  });

  // minos: tests/test_saga/test_executions/test_executors/test_response.py::TestResponseExecutor::test_exec_return_exception_raises
  it('test_response.py::test_exec_return_exception_raises: so does one that returns an Error', async () => {
    const saga = new Saga('response-returns-error').remoteStep().onExecute(sendCreateTicket).onError(() => new Error('This is an example')).commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga, { raiseOnError: false });
    await reply(manager, broker, 0, null, ['ticket'], SagaResponseStatus.ERROR);
    expect(stepOf(await running, 'step-1')).toMatchObject({ status: SagaStepStatus.ErroredOnError, error: { message: expect.stringContaining('This is an example') } });
  });
});

describe('minos test_context.py', () => {
  // minos: tests/test_saga/test_context.py::TestSagaContext::test_subclass
  it('test_subclass: a SagaContext is a mutable mapping (minos: a MutableMapping): get with a fallback, set, has, pop, clear, size, keys, values, entries, iteration', () => {
    const context = new SagaContext<Record<string, unknown>>({ one: 1 });
    context.set('two', 'two');
    context['three'] = foo('three');
    expect(context.size).toBe(3);
    expect([...context]).toEqual(['one', 'two', 'three']);
    expect(context.keys()).toEqual(['one', 'two', 'three']);
    expect(context.values()).toEqual([1, 'two', foo('three')]);
    expect(context.entries()).toEqual([['one', 1], ['two', 'two'], ['three', foo('three')]]);
    expect(context.get('missing', 'fallback')).toBe('fallback');
    expect(context.has('one')).toBe(true);
    expect('one' in context).toBe(true);
    expect(context.pop('one')).toBe(1);
    expect(context.pop('one', 'gone')).toBe('gone');
    expect(context.update({ four: 4 }).get('four')).toBe(4);
    context.clear();
    expect(context.size).toBe(0);
    expect(context.toJSON()).toEqual({});
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_constructor
  it('test_constructor: the values given are read as attributes', () => {
    const context = new SagaContext({ one: 1, two: 'two', three: foo('three') });
    expect(context.one).toBe(1);
    expect(context.two).toBe('two');
    expect(context.three).toEqual(foo('three'));
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_setter
  it('test_setter: values set as attributes are read back', () => {
    const context = new SagaContext();
    context.one = 1;
    context.two = 'two';
    context.three = foo('three');
    expect(context.one).toBe(1);
    expect(context.two).toBe('two');
    expect(context.three).toEqual(foo('three'));
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_setter_reserved_word
  it('test_setter_reserved_word: a key named like a method is stored, and the method stays (read the key with get())', () => {
    // minos's reserved word is `items` (a dict method); here the methods are get, set, keys, values, …
    const context = new SagaContext();
    (context as unknown as Record<string, unknown>).keys = 'bar';
    expect(typeof context.keys).toBe('function');
    expect(context.get('keys')).toBe('bar');
    expect(context.toJSON()).toEqual({ keys: 'bar' });
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_deleter
  it('test_deleter: deleting an attribute removes the key', () => {
    const context = new SagaContext<Record<string, unknown>>({ one: 1 });
    delete context.one;
    expect(context.toJSON()).toEqual(new SagaContext().toJSON());
    expect(context.has('one')).toBe(false);
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_deleter_attr
  it('test_deleter_attr: an attribute set and deleted is gone', () => {
    // minos's `_something` is an object attribute beside the fields, and reading it after `del`
    // raises AttributeError; here every name is a key, and a deleted one reads undefined.
    const context = new SagaContext<Record<string, unknown>>({ one: 1 });
    context._something = 1;
    delete context._something;
    expect(context._something).toBeUndefined();
    expect(context.has('_something')).toBe(false);
    expect(context.toJSON()).toEqual({ one: 1 });
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_deleter_reserved_word
  it('test_deleter_reserved_word: deleting a key named like a method removes the key and leaves the method', () => {
    const context = new SagaContext();
    context.set('keys', 'foo');
    delete (context as unknown as Record<string, unknown>).keys;
    expect(typeof context.keys).toBe('function');
    expect(context.has('keys')).toBe(false);
    expect(context.keys()).toEqual([]);
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_deleter_raises
  it('test_deleter_raises: deleting an attribute that is not there removes nothing and says so', () => {
    // minos raises AttributeError; JavaScript's `delete` operator does not throw, and delete() returns false.
    const context = new SagaContext<Record<string, unknown>>();
    expect(() => delete context._name).not.toThrow();
    expect(() => delete context.name).not.toThrow();
    expect(context.delete('_name')).toBe(false);
    expect(context.delete('name')).toBe(false);
    expect(context.size).toBe(0);
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_item_deleter
  it('test_item_deleter: deleting an item removes the key', () => {
    const context = new SagaContext<Record<string, unknown>>({ one: 1 });
    delete context['one'];
    expect(context.toJSON()).toEqual({});
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_item_deleter_raises
  it('test_item_deleter_raises: deleting an item that is not there removes nothing and says so', () => {
    // minos raises KeyError; as above, delete() returns false.
    const context = new SagaContext();
    expect(context.delete('_name')).toBe(false);
    expect(context.delete('name')).toBe(false);
    expect(context.toJSON()).toEqual({});
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_item_setter
  it('test_item_setter: values set as items make the context', () => {
    const context = new SagaContext();
    context['one'] = 1;
    context['two'] = 'two';
    context['three'] = foo('three');
    expect(context.toJSON()).toEqual(new SagaContext({ one: 1, two: 'two', three: foo('three') }).toJSON());
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_item_setter_reserved_word
  it('test_item_setter_reserved_word: an item named like a method is stored as a value', () => {
    const context = new SagaContext();
    (context as unknown as Record<string, unknown>)['values'] = 'bar';
    expect(context.get('values')).toBe('bar');
    expect(context.entries()).toEqual([['values', 'bar']]);
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_item_getter
  it('test_item_getter: values are read as items', () => {
    const context = new SagaContext({ one: 1, two: 'two', three: foo('three') });
    expect(context['one']).toBe(1);
    expect(context['two']).toBe('two');
    expect(context['three']).toEqual(foo('three'));
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_avro
  it('test_avro: the context survives its stored form (JSON here, Avro in minos)', () => {
    const original = new SagaContext({ one: 1, two: 'two', three: foo('three') });
    const another = new SagaContext(JSON.parse(JSON.stringify(original)) as Record<string, unknown>);
    expect(another.toJSON()).toEqual(original.toJSON());
  });

  // minos: tests/test_saga/test_context.py::TestSagaContext::test_change_type
  it('test_change_type: a key can change the type of its value', () => {
    const context = new SagaContext<Record<string, unknown>>({ one: 1 });
    context['one'] = 'one';
    expect(context.toJSON()).toEqual({ one: 'one' });
  });
});

describe('minos test_messages.py', () => {
  const request = new SagaRequest('UpdateProductPrice', 56);
  const uuid = randomUUID();
  const requestId = formatRequestId({ uuid, phase: 'execute', attempt: 1, step: 'step-1' });
  const relatedServices = ['ticket'];
  const response = new SagaResponse({ requestId, content: 56, relatedServices });

  // minos: tests/test_saga/test_messages.py::TestSagaRequest::test_no_content
  it('TestSagaRequest::test_no_content: a request without content has null content', () => {
    // The content is a required argument here: "no content" is null.
    expect(new SagaRequest('UpdateProductPrice', null).content).toBeNull();
  });

  // minos: tests/test_saga/test_messages.py::TestSagaRequest::test_target
  it('TestSagaRequest::test_target', () => {
    expect(request.target).toBe('UpdateProductPrice');
  });

  // minos: tests/test_saga/test_messages.py::TestSagaRequest::test_content
  it('TestSagaRequest::test_content', () => {
    expect(request.content).toBe(56);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaRequest::test_eq
  it('TestSagaRequest::test_eq: requests are equal by target and content', () => {
    expect(new SagaRequest('UpdateProductPrice', 56)).toEqual(request);
    expect(new SagaRequest('UpdateProductTitle', 56)).not.toEqual(request);
    expect(new SagaRequest('UpdateProductPrice', 42)).not.toEqual(request);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_from_message
  it('TestSagaResponse::test_from_message: a response built from what a transport delivers carries its execution and related services', () => {
    const observed = SagaResponse.from({ requestId, status: 200, content: 56, relatedServices: ['ticket', 'product'] });
    expect(observed.toJSON()).toEqual(new SagaResponse({ requestId, content: 56, relatedServices: ['ticket', 'product'] }).toJSON());
    expect(observed.uuid).toBe(uuid);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_from_message_empty_related_services
  it('TestSagaResponse::test_from_message_empty_related_services', () => {
    const observed = SagaResponse.from({ requestId, status: 200, content: 56, relatedServices: [] });
    expect(observed.toJSON()).toEqual(new SagaResponse({ requestId, content: 56 }).toJSON());
    expect(observed.relatedServices).toEqual([]);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_content
  it('TestSagaResponse::test_content', async () => {
    expect(await response.content()).toBe(56);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_service_name
  it('TestSagaResponse::test_service_name', () => {
    expect(response.relatedServices).toEqual(relatedServices);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_service_name_empty
  it('TestSagaResponse::test_service_name_empty', () => {
    expect(new SagaResponse({ requestId, content: 56 }).relatedServices).toEqual([]);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_uuid
  it('TestSagaResponse::test_uuid', () => {
    expect(response.uuid).toBe(uuid);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_ok
  it('TestSagaResponse::test_ok', () => {
    expect(new SagaResponse({ requestId, content: 56, relatedServices, status: SagaResponseStatus.SUCCESS }).ok).toBe(true);
    expect(new SagaResponse({ requestId, content: 56, relatedServices, status: SagaResponseStatus.ERROR }).ok).toBe(false);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_default_status
  it('TestSagaResponse::test_default_status', () => {
    expect(response.status).toBe(SagaResponseStatus.SUCCESS);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_status
  it('TestSagaResponse::test_status', () => {
    expect(new SagaResponse({ requestId, content: 56, relatedServices, status: SagaResponseStatus.SYSTEM_ERROR }).status).toBe(SagaResponseStatus.SYSTEM_ERROR);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_status_raw
  it('TestSagaResponse::test_status_raw: a raw 200 is SUCCESS', () => {
    expect(new SagaResponse({ requestId, content: 56, relatedServices, status: 200 }).status).toBe(SagaResponseStatus.SUCCESS);
  });

  // minos: tests/test_saga/test_messages.py::TestSagaResponse::test_eq
  it('TestSagaResponse::test_eq: responses are equal by content, status, related services and execution', () => {
    const same = (other: SagaResponse) => JSON.stringify(other.toJSON()) === JSON.stringify(response.toJSON());
    expect(same(new SagaResponse({ requestId, content: 56, relatedServices }))).toBe(true);
    expect(same(new SagaResponse({ requestId, content: 42, relatedServices }))).toBe(false);
    expect(same(new SagaResponse({ requestId, content: 56, relatedServices, status: SagaResponseStatus.SYSTEM_ERROR }))).toBe(false);
    expect(same(new SagaResponse({ requestId, content: 56, relatedServices: ['product'] }))).toBe(false);
  });
});

describe('minos test_definitions/test_saga.py', () => {
  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_commit_constructor
  it('test_commit_constructor: a new saga is not committed', () => {
    expect(new Saga('fresh').committed).toBe(false);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_commit
  it('test_commit: commit() returns the saga, committed', () => {
    // minos commits an empty saga and refuses it only when an execution is made of it (see
    // test_from_saga_raises); here commit() refuses it at once (EmptySagaError), so this saga has a step.
    const saga = new Saga('commit');
    saga.localStep().onExecute(createPayment);
    const observed = saga.commit();
    expect(observed).toBe(saga);
    expect(saga.committed).toBe(true);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_commit_define_callback
  it('test_commit_define_callback: commit(callback) adds the callback as a last local step and commits', async () => {
    const saga = new Saga('commit-callback');
    const observed = saga.commit(createPayment);
    expect(observed).toBe(saga);
    expect(saga.committed).toBe(true);
    expect(saga.steps.map((s) => [s.kind, s.name])).toEqual([['local', 'commit']]);
    const done = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga);
    expect(done.context.toJSON()).toEqual({ payment: 'payment' });
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_commit_raises
  it('test_commit_raises: a saga cannot be committed twice', () => {
    const saga = new Saga('commit-twice').localStep().onExecute(createPayment).commit();
    expect(() => saga.commit()).toThrow(SagaAlreadyCommittedError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_committed_false
  it('test_committed_false', () => {
    expect(new Saga('not-committed').committed).toBe(false);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_conditional
  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_conditional_empty
  it('test_conditional / test_conditional_empty: conditional_step() adds a conditional step to the saga and returns it', () => {
    const saga = new Saga('conditional-step');
    const step = saga.conditionalStep();
    expect(step).toBeInstanceOf(ConditionalSagaStep);
    expect(saga.steps).toEqual([step]);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_conditional_raises
  it('test_conditional_raises: no conditional step can be added to a committed saga', () => {
    expect(() => CREATE_PAYMENT.conditionalStep()).toThrow(SagaAlreadyCommittedError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_local
  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_local_empty
  it('test_local / test_local_empty: local_step() adds a local step to the saga and returns it', () => {
    const saga = new Saga('local-step');
    const step = saga.localStep();
    expect(step).toBeInstanceOf(LocalSagaStep);
    expect(saga.steps).toEqual([step]);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_local_raises
  it('test_local_raises: no local step can be added to a committed saga', () => {
    expect(() => CREATE_PAYMENT.localStep()).toThrow(SagaAlreadyCommittedError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_remote
  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_remote_empty
  it('test_remote / test_remote_empty: remote_step() adds a remote step to the saga and returns it', () => {
    const saga = new Saga('remote-step');
    const step = saga.remoteStep();
    expect(step).toBeInstanceOf(RemoteSagaStep);
    expect(saga.steps).toEqual([step]);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_remote_raises
  it('test_remote_raises: no remote step can be added to a committed saga', () => {
    expect(() => CREATE_PAYMENT.remoteStep()).toThrow(SagaAlreadyCommittedError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_empty_step_raises
  it('test_empty_step_raises: a remote step without on_execute fails the commit', () => {
    const saga = new Saga('empty-step').remoteStep().onExecute(sendCreateOrder).onFailure(sendDeleteOrder);
    saga.remoteStep();
    expect(() => saga.commit()).toThrow(UndefinedOnExecuteError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_duplicate_operation_raises
  it('test_duplicate_operation_raises: a hook cannot be set twice', () => {
    const step = new Saga('duplicate-operation').remoteStep().onExecute(sendCreateOrder).onFailure(sendDeleteOrder);
    expect(() => step.onFailure(sendDeleteTicket)).toThrow(SagaHookAlreadySetError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_missing_send_raises
  it('test_missing_send_raises: a remote step with on_failure but no on_execute fails the commit', () => {
    const step = new Saga('missing-send').remoteStep().onFailure(sendDeleteTicket);
    expect(() => step.commit()).toThrow(UndefinedOnExecuteError);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_build_execution
  it('test_build_execution: an execution can be made of a committed saga', async () => {
    const saga = new Saga('build-execution').remoteStep().onExecute(sendCreateOrder).onFailure(sendDeleteOrder).commit();
    const execution = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { pauseOnDisk: true });
    expect(execution).toBeInstanceOf(SagaExecution);
  });

  // minos: tests/test_saga/test_definitions/test_saga.py::TestSaga::test_validate_raises
  it('test_validate_raises: an empty saga, a step without on_execute, and a saga not committed are refused', async () => {
    expect(() => new Saga('validate-empty').commit()).toThrow(EmptySagaError);
    const withEmptyStep = new Saga('validate-empty-step');
    withEmptyStep.remoteStep();
    expect(() => withEmptyStep.commit()).toThrow(UndefinedOnExecuteError);
    const notCommitted = new Saga('validate-not-committed');
    notCommitted.localStep().onExecute(createPayment);
    expect(() => createSagaActor(notCommitted)).toThrow(SagaNotCommittedError);
    await expect(managerWith({ broker: new ManualBroker(), logger: quiet() }).run(notCommitted)).rejects.toBeInstanceOf(SagaNotCommittedError);
  });
});

describe('minos test_definitions/test_steps/', () => {
  // minos: tests/test_saga/test_definitions/test_steps/test_abc.py::TestSagaStep::test_conditional_step
  // minos: tests/test_saga/test_definitions/test_steps/test_abc.py::TestSagaStep::test_local_step
  // minos: tests/test_saga/test_definitions/test_steps/test_abc.py::TestSagaStep::test_remote_step
  it('test_abc.py::test_conditional_step / test_local_step / test_remote_step: a step adds the next step to its saga', () => {
    const saga = new Saga('chained');
    const first = saga.remoteStep();
    const conditional = first.conditionalStep();
    const local = conditional.localStep();
    const remote = local.remoteStep();
    expect(conditional).toBeInstanceOf(ConditionalSagaStep);
    expect(local).toBeInstanceOf(LocalSagaStep);
    expect(remote).toBeInstanceOf(RemoteSagaStep);
    expect(saga.steps).toEqual([first, conditional, local, remote]);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_abc.py::TestSagaStep::test_commit
  // minos: tests/test_saga/test_definitions/test_steps/test_abc.py::TestSagaStep::test_commit_validate
  it('test_abc.py::test_commit / test_commit_validate: commit(callback) on a step commits its saga, validating the step', () => {
    const saga = new Saga('step-commit');
    const observed = saga.remoteStep().onExecute(sendCreateTicket).commit(createPayment);
    expect(observed).toBe(saga);
    expect(saga.steps.map((s) => s.name)).toEqual(['step-1', 'commit']);
    expect(() => new Saga('step-commit-invalid').remoteStep().commit()).toThrow(UndefinedOnExecuteError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_on_execute_method
  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_on_failure_method
  it('test_local.py::test_on_execute_method / test_on_failure_method: the handlers set are the ones run', async () => {
    const saga = new Saga('local-methods').localStep().onExecute(createPayment).onFailure(deletePayment).localStep().onExecute(createPaymentRaises).commit();
    const execution = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(saga, { raiseOnError: false });
    expect(execution.context.toJSON()).toEqual({ payment: null });
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_on_execute_multiple_raises
  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_on_failure_multiple_raises
  it('test_local.py::test_on_execute_multiple_raises / test_on_failure_multiple_raises', () => {
    expect(() => new Saga('local-twice-execute').localStep().onExecute(createPayment).onExecute(createPayment)).toThrow(SagaHookAlreadySetError);
    expect(() => new Saga('local-twice-failure').localStep().onFailure(deletePayment).onFailure(deletePayment)).toThrow(SagaHookAlreadySetError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_validate_raises_empty
  // minos: tests/test_saga/test_definitions/test_steps/test_local.py::TestLocalSagaStep::test_validate_raises_non_on_execute
  it('test_local.py::test_validate_raises_empty / test_validate_raises_non_on_execute: a local step needs on_execute', () => {
    // minos tells an empty step (EmptySagaStepException) from one without on_execute; both are UndefinedOnExecuteError here.
    expect(() => new Saga('local-empty').localStep().commit()).toThrow(UndefinedOnExecuteError);
    expect(() => new Saga('local-no-execute').localStep().onFailure(deletePayment).commit()).toThrow(UndefinedOnExecuteError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_execute_method
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_failure_method
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_success_method
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_error_method
  it('test_remote.py::test_on_*_method: the handlers set are the ones run', async () => {
    const saga = new Saga('remote-methods')
      .remoteStep()
      .onExecute(sendCreateTicket)
      .onSuccess(handleTicketSuccess)
      .onFailure(sendDeleteTicket)
      .remoteStep()
      .onExecute(sendCreateOrder)
      .onError(handleTicketError)
      .localStep()
      .onExecute(createPaymentRaises)
      .commit();
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(saga, { raiseOnError: false });
    await reply(manager, broker, 0, foo('ticket'));
    await reply(manager, broker, 1, null, [], SagaResponseStatus.ERROR);
    await reply(manager, broker, 2, {});
    const execution = await running;
    expect(sent(broker.requests)).toEqual([
      ['execute', 'ticket.create'],
      ['execute', 'order.create'],
      ['compensate', 'ticket.create'],
    ]);
    expect(broker.requests[2]!.content).toEqual(foo('delete_ticket!'));
    // handle_ticket_success set it, then handle_ticket_error (on the 400) cleared it.
    expect(execution.context.toJSON()).toEqual({ ticket: null });
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_execute_multiple_raises
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_failure_multiple_raises
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_success_multiple_raises
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_on_error_multiple_raises
  it('test_remote.py::test_on_*_multiple_raises: each hook can be set once', () => {
    const step = () => new Saga(`remote-twice-${randomUUID().slice(0, 8)}`).remoteStep();
    expect(() => step().onExecute(sendCreateTicket).onExecute(sendCreateTicket)).toThrow(SagaHookAlreadySetError);
    expect(() => step().onFailure(sendDeleteTicket).onFailure(sendDeleteTicket)).toThrow(SagaHookAlreadySetError);
    expect(() => step().onSuccess(handleTicketSuccess).onSuccess(handleTicketSuccess)).toThrow(SagaHookAlreadySetError);
    expect(() => step().onError(handleTicketError).onError(handleTicketError)).toThrow(SagaHookAlreadySetError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_validate_raises_empty
  // minos: tests/test_saga/test_definitions/test_steps/test_remote.py::TestRemoteSagaStep::test_validate_raises_non_on_execute
  it('test_remote.py::test_validate_raises_empty / test_validate_raises_non_on_execute: a remote step needs on_execute', () => {
    expect(() => new Saga('remote-empty').remoteStep().commit()).toThrow(UndefinedOnExecuteError);
    expect(() => new Saga('remote-no-execute').remoteStep().onFailure(sendDeleteTicket).commit()).toThrow(UndefinedOnExecuteError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestConditionalSagaStep::test_if_then
  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestConditionalSagaStep::test_else_then
  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestIfThenAlternative::test_saga
  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestElseThenAlternative::test_saga
  it('test_conditional.py::test_if_then / test_else_then / the alternatives’ test_saga: branches are kept in order, if_then ones first, then the else_then one, each with its saga', () => {
    const step = new Saga('branches').conditionalStep().ifThen(addOrderCondition, ADD_ORDER).ifThen(deleteOrderCondition, DELETE_ORDER).elseThen(CREATE_PAYMENT);
    expect(step.branches.map((b) => [b.key, b.saga, b.condition === undefined])).toEqual([
      ['add-order', ADD_ORDER, false],
      ['delete-order', DELETE_ORDER, false],
      ['create-payment', CREATE_PAYMENT, true],
    ]);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestConditionalSagaStep::test_else_then_raises
  it('test_conditional.py::test_else_then_raises: only one else_then', () => {
    expect(() => new Saga('else-twice').conditionalStep().elseThen(CREATE_PAYMENT).elseThen(CREATE_PAYMENT)).toThrow(SagaHookAlreadySetError);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestConditionalSagaStep::test_validate
  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestIfThenAlternative::test_validate
  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestElseThenAlternative::test_validate
  it('test_conditional.py::test_validate: every branch’s saga is validated (it must be committed)', () => {
    const uncommitted = new Saga('branch-uncommitted');
    uncommitted.localStep().onExecute(createPayment);
    expect(() => new Saga('validate-if').conditionalStep().ifThen(addOrderCondition, uncommitted)).toThrow(SagaNotCommittedError);
    expect(() => new Saga('validate-else').conditionalStep().elseThen(uncommitted)).toThrow(SagaNotCommittedError);
    expect(new Saga('validate-ok').conditionalStep().ifThen(addOrderCondition, ADD_ORDER).ifThen(deleteOrderCondition, DELETE_ORDER).elseThen(CREATE_PAYMENT).commit().committed).toBe(true);
  });

  // minos: tests/test_saga/test_definitions/test_steps/test_conditional.py::TestConditionalSagaStep::test_validate_raises
  it('test_conditional.py::test_validate_raises: a conditional step without branches is refused', () => {
    const saga = new Saga('conditional-no-branch');
    saga.conditionalStep();
    expect(() => saga.commit()).toThrow(InvalidSagaDefinitionError);
  });
});

describe('minos test_manager.py', () => {
  const uuid = 'a74d9d6d-290a-492e-afcc-70607958f65d';

  /** minos's `_build_expected_messages`: the two steps' requests, then reserve and commit per service. */
  function expectAddOrderMessages(broker: ManualBroker, user: string) {
    expect(broker.requests.map((r) => ({ phase: r.phase, target: r.target, content: r.content, uuid: r.uuid, user: r.user }))).toEqual([
      { phase: 'execute', target: 'order.create', content: foo('create_order!'), uuid, user },
      { phase: 'execute', target: 'ticket.create', content: foo('create_ticket!'), uuid, user },
    ]);
    // minos: reserve and commit to "foo" (the responses' related service) and "order" (its own
    // service). Departure ("the saga's own service takes part in the commit"): here the targets'
    // services (order, ticket) and the related one (foo), in the order they took part.
    expect(sent(broker.transactions)).toEqual([
      ['reserve', 'order'],
      ['reserve', 'foo'],
      ['reserve', 'ticket'],
      ['commit', 'order'],
      ['commit', 'foo'],
      ['commit', 'ticket'],
    ]);
    for (const message of broker.transactions) expect(message.content).toEqual({ transactionId: uuid });
  }

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_constructor
  it('test_constructor: a manager has a repository of executions (in memory by default)', () => {
    const manager = managerWith({ logger: quiet() });
    expect(manager).toBeInstanceOf(SagaManager);
    expect(manager.repository).toBeInstanceOf(InMemorySagaRepository);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_memory
  it('test_run_with_pause_on_memory: run() waits in memory for each response and finishes, committing; the messages sent', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const user = randomUUID();
    const running = manager.run(ADD_ORDER, { uuid, user });
    await reply(manager, broker, 0, [foo('foo')], ['foo']);
    await reply(manager, broker, 1, [foo('foo')], ['foo']);
    const execution = await running;
    expect(execution.status).toBe(SagaStatus.Finished);
    expectAddOrderMessages(broker, user);
    // minos deletes a finished execution from storage (load raises SagaExecutionNotFoundException).
    // Departure ("a finished execution is deleted from storage" → kept for retentionMs).
    expect((await manager.get(uuid)).status).toBe(SagaStatus.Finished);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_memory_without_commit
  it('test_run_with_pause_on_memory_without_commit: with autocommit: false nothing is committed', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const running = manager.run(ADD_ORDER, { autocommit: false });
    await reply(manager, broker, 0, [foo('foo')], ['foo']);
    await reply(manager, broker, 1, [foo('foo')], ['foo']);
    const execution = await running;
    // Departure ("execute(autocommit=False) ends finished" → waits in awaiting-commit, paused).
    expect(execution.status).toBe(SagaStatus.Paused);
    expect(execution.awaitingCommit).toBe(true);
    expect(broker.transactions).toEqual([]);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_memory_with_error
  it('test_run_with_pause_on_memory_with_error: a broker failure errors the execution, and its transactions are rejected', async () => {
    // minos's broker fails to receive; here it fails to send the first request.
    const broker = new ThrowingBroker(['execute']);
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(ADD_ORDER, { raiseOnError: false });
    expect(execution.status).toBe(SagaStatus.Errored);
    expect(execution.error).toMatchObject({ step: 'step-1', code: 'SAGA_BROKER_FAILED' });
    // minos: reject() is called once.
    expect(sent(broker.transactions)).toEqual([['reject', 'order']]);
    expect(execution.transaction.reject).toMatchObject({ ok: true });
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_memory_without_autocommit
  it('test_run_with_pause_on_memory_without_autocommit: the same with autocommit: false still rejects (README: every rollback ends by rejecting)', async () => {
    const broker = new ThrowingBroker(['execute']);
    const manager = managerWith({ broker, logger: quiet() });
    const execution = await manager.run(ADD_ORDER, { autocommit: false, raiseOnError: false });
    expect(execution.status).toBe(SagaStatus.Errored);
    // minos: reject() is not called (autocommit=False leaves the transactions to the caller).
    // Here every rollback ends by rejecting the transactions of the services that took part
    // (README, "The two-phase commit"; the departure "reject() only tells the participants to
    // reject … → both compensate, then reject"): autocommit only defers the commit decision.
    expect(sent(broker.transactions)).toEqual([['reject', 'order']]);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_memory_with_error_raises
  it('test_run_with_pause_on_memory_with_error_raises: with raiseOnError (the default) run() throws SagaFailedExecutionError', async () => {
    const broker = new ThrowingBroker(['execute']);
    const manager = managerWith({ broker, logger: quiet() });
    const error = await manager.run(ADD_ORDER).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(SagaFailedExecutionError);
    expect((error as SagaFailedExecutionError).execution.status).toBe(SagaStatus.Errored);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_disk
  it('test_run_with_pause_on_disk: run() returns paused, each response resumes it from the store, and it finishes, committing', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const user = randomUUID();
    const first = await manager.run(ADD_ORDER, { uuid, user, pauseOnDisk: true });
    expect(first.status).toBe(SagaStatus.Paused);
    expect(manager.liveCount).toBe(0);
    const second = await respond(manager, broker.requests[0]!, [foo('foo')], ['foo']);
    expect(second.status).toBe(SagaStatus.Paused);
    await respond(manager, broker.requests[1]!, [foo('foo')], ['foo']);
    // minos is finished once run(response=…) returns; the commit's answers are awaited here (departure:
    // "commit and reject messages are published once and not awaited").
    const done = await manager.waitFor(uuid);
    expect(done.status).toBe(SagaStatus.Finished);
    expectAddOrderMessages(broker, user);
    // Departure ("a finished execution is deleted from storage" → kept for retentionMs).
    expect((await manager.get(uuid)).status).toBe(SagaStatus.Finished);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_disk_without_commit
  it('test_run_with_pause_on_disk_without_commit: paused on disk with autocommit: false, nothing is committed', async () => {
    const broker = new ManualBroker();
    const manager = managerWith({ broker, logger: quiet() });
    const first = await manager.run(ADD_ORDER, { pauseOnDisk: true, autocommit: false });
    expect(first.status).toBe(SagaStatus.Paused);
    expect((await respond(manager, broker.requests[0]!, [foo('foo')], ['foo'])).status).toBe(SagaStatus.Paused);
    await respond(manager, broker.requests[1]!, [foo('foo')], ['foo']);
    const waiting = await manager.get(first.uuid);
    // Departure ("execute(autocommit=False) ends finished" → awaiting-commit, paused).
    expect(waiting.status).toBe(SagaStatus.Paused);
    expect(waiting.awaitingCommit).toBe(true);
    expect(broker.transactions).toEqual([]);
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_disk_returning_uuid
  it('test_run_with_pause_on_disk_returning_uuid: returnExecution: false returns the uuid of the stored, paused execution', async () => {
    const manager = managerWith({ broker: new ManualBroker(), logger: quiet() });
    const returned = await manager.run(ADD_ORDER, { returnExecution: false, pauseOnDisk: true });
    expect(typeof returned).toBe('string');
    const execution = await manager.get(returned);
    expect(execution).toBeInstanceOf(SagaExecution);
    expect(execution.status).toBe(SagaStatus.Paused);
    expect(await manager.repository.load(returned)).not.toBeNull();
  });

  // minos: tests/test_saga/test_manager.py::TestSagaManager::test_run_with_pause_on_disk_with_context
  it('test_run_with_pause_on_disk_with_context: the execution starts with the context given', async () => {
    const context = { foo: foo('foo'), one: 1, a: 'a' };
    const execution = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(ADD_ORDER, { context, pauseOnDisk: true });
    expect(execution.context.toJSON()).toEqual(context);
    const fromContext = await managerWith({ broker: new ManualBroker(), logger: quiet() }).run(ADD_ORDER, { context: new SagaContext<Record<string, unknown>>(context), pauseOnDisk: true });
    expect(fromContext.context.toJSON()).toEqual(context);
  });
});
