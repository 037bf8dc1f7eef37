import type { SagaContext } from '../context.js';
import type { SagaRequest } from '../messages/saga-request.js';
import type { SagaResponse } from '../messages/saga-response.js';

/** A value or a promise of it: every handler may be sync or async. */
export type Awaitable<T> = T | Promise<T>;

/**
 * A local step's `onExecute` / `onFailure`, and the `commit(cb)` callback. Return the context (or
 * nothing, after mutating it) to go on; return or throw an `Error` to fail the step.
 */
export type LocalHandler<T extends object> = (ctx: SagaContext<T>) => Awaitable<SagaContext<T> | void | Error>;

/**
 * A remote step's `onExecute` / `onFailure`: the request to send, or nothing to skip the step
 * (or, for `onFailure`, to skip the compensation). A returned or thrown `Error` fails it.
 */
export type RequestHandler<T extends object> = (ctx: SagaContext<T>) => Awaitable<SagaRequest | void | Error>;

/**
 * A remote step's `onSuccess` / `onError`: return the context (or nothing) to go on, an `Error`
 * to fail the step, which then compensates this step too.
 */
export type ResponseHandler<T extends object> = (ctx: SagaContext<T>, response: SagaResponse) => Awaitable<SagaContext<T> | void | Error>;

/** A conditional step's condition: the first that holds picks its branch. */
export type Condition<T extends object> = (ctx: SagaContext<T>) => Awaitable<boolean>;

/** @internal How handlers are kept once the context type has done its work. */
export type StoredHandler = (ctx: SagaContext, response: SagaResponse) => unknown;
