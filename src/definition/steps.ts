import { InvalidSagaDefinitionError } from '../errors/invalid-saga-definition-error.js';
import { SagaAlreadyCommittedError } from '../errors/saga-already-committed-error.js';
import { SagaHookAlreadySetError } from '../errors/saga-hook-already-set-error.js';
import { SagaNotCommittedError } from '../errors/saga-not-committed-error.js';
import type { Condition, LocalHandler, RequestHandler, ResponseHandler, StoredHandler } from './handlers.js';
import type { Saga } from './saga.js';

/** Retry policy of a remote step, for 500 responses and timeouts. */
export interface RetryPolicy {
  /** Total attempts, the first included. @defaultValue 1 */
  attempts: number;
  /** Wait before the second attempt; doubles for each further one. @defaultValue 0 */
  backoffMs: number;
}

/** The kinds of step. */
export type SagaStepKind = 'local' | 'remote' | 'conditional';

/** Anything that is one step of a saga. */
export type SagaStep = LocalSagaStep<object> | RemoteSagaStep<object> | ConditionalSagaStep<object>;

abstract class SagaStepBase<T extends object> {
  abstract readonly kind: SagaStepKind;
  /** The step's name: its state id in the chart, unique within its saga. */
  readonly name: string;
  /** @internal */
  protected readonly saga: Saga<T>;

  constructor(saga: Saga<T>, name: string) {
    this.saga = saga;
    this.name = name;
  }

  /** Adds a local step after this one (see {@link Saga.localStep}). */
  localStep(name?: string): LocalSagaStep<T> {
    return this.saga.localStep(name);
  }

  /** Adds a remote step after this one (see {@link Saga.remoteStep}). */
  remoteStep(name?: string): RemoteSagaStep<T> {
    return this.saga.remoteStep(name);
  }

  /** Adds a conditional step after this one (see {@link Saga.conditionalStep}). */
  conditionalStep(name?: string): ConditionalSagaStep<T> {
    return this.saga.conditionalStep(name);
  }

  /** Ends the definition (see {@link Saga.commit}). */
  commit(callback?: LocalHandler<T>): Saga<T> {
    return this.saga.commit(callback);
  }

  /** @internal Throws unless the hook may be set now. */
  protected guard(hook: string, alreadySet: boolean): void {
    if (this.saga.committed) throw new SagaAlreadyCommittedError(this.saga.name);
    if (alreadySet) throw new SagaHookAlreadySetError(this.saga.name, this.name, hook);
  }
}

/**
 * A step that runs in the orchestrator: `onExecute` changes the context, `onFailure` undoes it
 * when a later step fails.
 *
 * @example
 * ```ts
 * new Saga('order').localStep('validate').onExecute(validate).onFailure(undoValidate).commit();
 * ```
 */
export class LocalSagaStep<T extends object> extends SagaStepBase<T> {
  readonly kind = 'local' as const;
  /** @internal */ onExecuteHandler: StoredHandler | undefined;
  /** @internal */ onFailureHandler: StoredHandler | undefined;

  /** Sets the step's action. */
  onExecute(handler: LocalHandler<T>): this {
    this.guard('onExecute', this.onExecuteHandler !== undefined);
    this.onExecuteHandler = handler as unknown as StoredHandler;
    return this;
  }

  /** Sets the step's compensation, run when a later step fails. */
  onFailure(handler: LocalHandler<T>): this {
    this.guard('onFailure', this.onFailureHandler !== undefined);
    this.onFailureHandler = handler as unknown as StoredHandler;
    return this;
  }
}

/**
 * A step that asks a participant service to act: `onExecute` returns the {@link SagaRequest},
 * the step waits (paused) for the response, then `onSuccess` (200) or `onError` (400) runs;
 * `onFailure` returns the compensating request.
 *
 * @example
 * ```ts
 * saga.remoteStep('reserve-stock')
 *   .onExecute((ctx) => new SagaRequest('inventory.reserve', { items: ctx.items }))
 *   .onSuccess(async (ctx, res) => { ctx.reservationId = (await res.content()).id; })
 *   .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId }))
 *   .timeout(5_000).retry({ attempts: 3, backoffMs: 200 });
 * ```
 */
export class RemoteSagaStep<T extends object> extends SagaStepBase<T> {
  readonly kind = 'remote' as const;
  /** @internal */ onExecuteHandler: StoredHandler | undefined;
  /** @internal */ onSuccessHandler: StoredHandler | undefined;
  /** @internal */ onErrorHandler: StoredHandler | undefined;
  /** @internal */ onFailureHandler: StoredHandler | undefined;
  /** Milliseconds to wait for each response; `undefined` waits for ever. */
  timeoutMs: number | undefined;
  /** Retry policy for 500 responses and timeouts (compensations use it too). */
  retryPolicy: RetryPolicy | undefined;

  /** Sets the handler that builds the request (return nothing to skip the step). */
  onExecute(handler: RequestHandler<T>): this {
    this.guard('onExecute', this.onExecuteHandler !== undefined);
    this.onExecuteHandler = handler as unknown as StoredHandler;
    return this;
  }

  /** Sets the handler of a 200 response. Without one, the step simply finishes. */
  onSuccess(handler: ResponseHandler<T>): this {
    this.guard('onSuccess', this.onSuccessHandler !== undefined);
    this.onSuccessHandler = handler as unknown as StoredHandler;
    return this;
  }

  /**
   * Sets the handler of a 400 response: return the context to continue the saga, an `Error` to
   * fail it. Without one, a 400 fails the step (status `errored-by-on-execute`).
   */
  onError(handler: ResponseHandler<T>): this {
    this.guard('onError', this.onErrorHandler !== undefined);
    this.onErrorHandler = handler as unknown as StoredHandler;
    return this;
  }

  /** Sets the handler that builds the compensating request. */
  onFailure(handler: RequestHandler<T>): this {
    this.guard('onFailure', this.onFailureHandler !== undefined);
    this.onFailureHandler = handler as unknown as StoredHandler;
    return this;
  }

  /** Fails (or retries) an attempt with no response after `ms` milliseconds. */
  timeout(ms: number): this {
    this.guard('timeout', this.timeoutMs !== undefined);
    if (!Number.isInteger(ms) || ms <= 0) {
      throw new InvalidSagaDefinitionError(this.saga.name, `timeout of step "${this.name}" must be a positive whole number of milliseconds, got ${ms}.`);
    }
    this.timeoutMs = ms;
    return this;
  }

  /** Retries 500 responses and timeouts: `attempts` in all, waiting `backoffMs`, doubled each time. */
  retry(policy: { attempts: number; backoffMs?: number }): this {
    this.guard('retry', this.retryPolicy !== undefined);
    const backoffMs = policy.backoffMs ?? 0;
    if (!Number.isInteger(policy.attempts) || policy.attempts < 1 || policy.attempts > 100) {
      throw new InvalidSagaDefinitionError(this.saga.name, `retry.attempts of step "${this.name}" must be a whole number from 1 to 100, got ${policy.attempts}.`);
    }
    if (!Number.isInteger(backoffMs) || backoffMs < 0) {
      throw new InvalidSagaDefinitionError(this.saga.name, `retry.backoffMs of step "${this.name}" must be a whole number of milliseconds >= 0, got ${backoffMs}.`);
    }
    this.retryPolicy = { attempts: policy.attempts, backoffMs };
    return this;
  }
}

/** One branch of a conditional step. */
export interface SagaBranch {
  /** Key of the branch's state: the branch saga's name, made unique within the step. */
  readonly key: string;
  readonly saga: Saga<object>;
  /** @internal `undefined` for the else branch. */
  readonly condition: StoredHandler | undefined;
}

/**
 * A step that picks one nested saga: the first `ifThen` whose condition holds, else the
 * `elseThen` saga, else nothing. The branch runs in the same execution with the same context,
 * and its steps are compensated with the rest.
 *
 * @example
 * ```ts
 * saga.conditionalStep('shipping')
 *   .ifThen((ctx) => ctx.express === true, EXPRESS_SHIPPING)
 *   .elseThen(STANDARD_SHIPPING);
 * ```
 */
export class ConditionalSagaStep<T extends object> extends SagaStepBase<T> {
  readonly kind = 'conditional' as const;
  /** The branches, `ifThen` ones first, in order, then the `elseThen` one. */
  readonly branches: SagaBranch[] = [];
  #hasElse = false;

  /** Adds a branch taken when `condition` holds (and no earlier one did). */
  ifThen<U extends object>(condition: Condition<T>, saga: Saga<U>): this {
    this.guard('elseThen before ifThen', this.#hasElse);
    this.#add(saga, condition as unknown as StoredHandler);
    return this;
  }

  /** Sets the branch taken when no condition holds. */
  elseThen<U extends object>(saga: Saga<U>): this {
    this.guard('elseThen', this.#hasElse);
    this.#add(saga, undefined);
    this.#hasElse = true;
    return this;
  }

  #add(saga: Saga<object> | Saga<never>, condition: StoredHandler | undefined): void {
    const branchSaga = saga as Saga<object>;
    if (!branchSaga.committed) throw new SagaNotCommittedError(branchSaga.name);
    let key = branchSaga.name;
    for (let n = 2; this.branches.some((b) => b.key === key); n++) key = `${branchSaga.name}-${n}`;
    this.branches.push({ key, saga: branchSaga, condition });
  }
}
