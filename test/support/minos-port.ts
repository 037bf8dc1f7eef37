/**
 * The fixtures of minos-microservice-saga's `tests/utils.py`, translated for
 * `test/unit/minos-port.test.ts`: the same handlers and the same three sagas (ADD_ORDER,
 * DELETE_ORDER, CREATE_PAYMENT), with minos's broker topics turned into sagachart targets
 * (`service.action`) so that the service of each request is the one minos's tests name:
 * `CreateOrder` → `order.create`, `DeleteOrder` → `order.delete`, `CreateTicket` →
 * `ticket.create` (minos's `send_delete_ticket` sends to `CreateTicket` too, and so does this),
 * `CreateProduct` → `product.create`. minos's model `Foo("x")` is the JSON `{ foo: 'x' }`.
 * Steps keep sagachart's default names (`step-1`, `step-2`, …), as minos's are unnamed.
 */
import {
  Saga,
  SagaRequest,
  SagaResponseStatus,
  type OutgoingRequest,
  type SagaContext,
  type SagaManager,
  type SagaResponse,
} from '../../src/index.js';
import { ManualBroker, until } from './harness.js';

/** minos's `Foo` model, as JSON. */
export const foo = (value: string) => ({ foo: value });

type Ctx = SagaContext<Record<string, unknown>>;

/** A handler that fails the way minos's `*_raises` fixtures do: by raising. */
function raises(): never {
  throw new Error('ValueError');
}

export const sendCreateProduct = (ctx: Ctx) => new SagaRequest('product.create', ctx.product as { foo: string });
export const handleProductSuccess = async (ctx: Ctx, response: SagaResponse) => {
  ctx.product = await response.content();
  return ctx;
};
export const sendCreateTicket = (_ctx: Ctx) => new SagaRequest('ticket.create', foo('create_ticket!'));
export const sendCreateTicketRaises = (_ctx: Ctx): SagaRequest => raises();
export const sendDeleteTicket = (_ctx: Ctx) => new SagaRequest('ticket.create', foo('delete_ticket!'));
export const sendCreateOrder = (_ctx: Ctx) => new SagaRequest('order.create', foo('create_order!'));
export const sendDeleteOrder = (_ctx: Ctx) => new SagaRequest('order.delete', foo('delete_order!'));
export const handleOrderSuccess = async (ctx: Ctx, response: SagaResponse) => {
  ctx.order = await response.content();
  return ctx;
};
export const handleTicketSuccess = async (ctx: Ctx, response: SagaResponse) => {
  ctx.ticket = await response.content();
  return ctx;
};
export const handleTicketSuccessRaises = (_ctx: Ctx, _response: SagaResponse): Ctx => raises();
export const handleTicketError = (ctx: Ctx, _response: SagaResponse) => {
  ctx.ticket = null;
  return ctx;
};
export const handleTicketErrorRaises = (_ctx: Ctx, _response: SagaResponse): Ctx => raises();
export const createPayment = (ctx: Ctx) => {
  ctx.payment = 'payment';
  return ctx;
};
export const createPaymentRaises = (_ctx: Ctx): Ctx => raises();
export const deletePayment = (ctx: Ctx) => {
  ctx.payment = null;
  return ctx;
};
export const addOrderCondition = (ctx: Ctx) => ctx.has('a');
export const deleteOrderCondition = (ctx: Ctx) => ctx.has('b');

/** minos's ADD_ORDER: remote create-order, local create-payment, remote create-ticket (with on_error). */
export const ADD_ORDER = new Saga('add-order')
  .remoteStep()
  .onExecute(sendCreateOrder)
  .onSuccess(handleOrderSuccess)
  .onFailure(sendDeleteOrder)
  .localStep()
  .onExecute(createPayment)
  .onFailure(deletePayment)
  .remoteStep()
  .onExecute(sendCreateTicket)
  .onSuccess(handleTicketSuccess)
  .onError(handleTicketError)
  .onFailure(sendDeleteTicket)
  .commit();

/** minos's DELETE_ORDER: remote delete-order, then remote delete-ticket whose on_success raises. */
export const DELETE_ORDER = new Saga('delete-order')
  .remoteStep()
  .onExecute(sendDeleteOrder)
  .onSuccess(handleOrderSuccess)
  .remoteStep()
  .onExecute(sendDeleteTicket)
  .onSuccess(handleTicketSuccessRaises)
  .commit();

/** minos's CREATE_PAYMENT: one local step. */
export const CREATE_PAYMENT = new Saga('create-payment').localStep().onExecute(createPayment).onFailure(deletePayment).commit();

/** The saga of minos's `test_saga/test_executions/test_saga/test_execute.py::TestSagaExecution.setUp`. */
export const TWO_REMOTE = new Saga('two-remote')
  .remoteStep()
  .onExecute(sendCreateOrder)
  .onSuccess(handleOrderSuccess)
  .onFailure(sendDeleteOrder)
  .remoteStep()
  .onExecute(sendCreateTicket)
  .onSuccess(handleTicketSuccess)
  .commit();

/**
 * What minos's `SagaResponse(content, related_services, status)` carries, delivered for `request`
 * the way a transport does: through `manager.resume()`, which resolves with the execution right
 * after the response was applied (minos's `execution.execute(response)`).
 */
export function respond(
  manager: SagaManager,
  request: OutgoingRequest,
  content: unknown,
  relatedServices: string[] = [],
  status: SagaResponseStatus = SagaResponseStatus.SUCCESS,
) {
  return manager.resume({ requestId: request.requestId, status, content: content as never, relatedServices });
}

/** A {@link ManualBroker} whose `send` throws for the phases named (minos's patched `send` raising `ValueError`). */
export class ThrowingBroker extends ManualBroker {
  readonly #phases: ReadonlySet<string>;
  /** Requests it refused, in order. */
  readonly refused: OutgoingRequest[] = [];

  readonly #message: string;

  constructor(phases: string[], options: { transactions?: 'yes' | 'manual'; message?: string } = {}) {
    super(options.transactions ? { transactions: options.transactions } : {});
    this.#phases = new Set(phases);
    this.#message = options.message ?? 'ValueError';
  }

  override send(request: OutgoingRequest): void {
    if (this.#phases.has(request.phase)) {
      this.refused.push(request);
      throw new Error(this.#message);
    }
    super.send(request);
  }
}

/** `[phase, target]` of each message: what minos's tests compare `broker_publisher.messages` by. */
export const sent = (requests: readonly OutgoingRequest[]) => requests.map((r) => [r.phase, r.target]);

/**
 * Waits for the `index`-th step request (0-based) and answers it through `manager.resume()`:
 * minos's `execution.execute(SagaResponse(content, related_services, status))`.
 */
export async function reply(
  manager: SagaManager,
  broker: ManualBroker,
  index: number,
  content: unknown,
  relatedServices: string[] = [],
  status: SagaResponseStatus = SagaResponseStatus.SUCCESS,
) {
  await until(() => broker.requests.length > index, `request ${index + 1} sent (sent: ${broker.requests.map((r) => r.target).join(', ') || 'none'})`);
  return respond(manager, broker.requests[index]!, content, relatedServices, status);
}

/**
 * For a `ManualBroker({ transactions: 'manual' })`: waits until `count` messages of `phase` are
 * out, then answers each with what `answer` says (a vote for a reserve, an ack otherwise).
 */
export async function answerTransactions(
  broker: ManualBroker,
  phase: 'reserve' | 'commit' | 'reject',
  count: number,
  answer: (request: OutgoingRequest) => [200 | 400 | 500, unknown] = (r) => [200, r.phase === 'reserve' ? { vote: 'yes' } : { ack: true }],
): Promise<OutgoingRequest[]> {
  const of = () => broker.transactions.filter((t) => t.phase === phase);
  await until(() => of().length >= count, `${count} ${phase} messages sent (sent: ${sent(broker.transactions).join('; ') || 'none'})`);
  const messages = of();
  for (const message of messages) {
    const [status, content] = answer(message);
    broker.answer(message, status, content as never);
  }
  return messages;
}
