import type { ZodType } from 'zod';
import { DuplicateStepNameError } from '../errors/duplicate-step-name-error.js';
import { EmptySagaError } from '../errors/empty-saga-error.js';
import { InvalidSagaDefinitionError } from '../errors/invalid-saga-definition-error.js';
import { SagaAlreadyCommittedError } from '../errors/saga-already-committed-error.js';
import { UndefinedOnExecuteError } from '../errors/undefined-on-execute-error.js';
import type { SagaContext } from '../context.js';
import type { ErrorInfo } from '../json.js';
import type { LocalHandler } from './handlers.js';
import { definitionHash } from './hash.js';
import { ConditionalSagaStep, LocalSagaStep, RemoteSagaStep, type SagaStep } from './steps.js';

/** Names of sagas and steps: they become state keys and ids, so no dots, slashes or hashes. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** State keys the compiler puts beside the steps. */
const RESERVED_STEP_NAMES = new Set(['awaiting-commit']);

/** Options of a saga definition. */
export interface SagaOptions<T extends object> {
  /**
   * A zod schema for the context: `run()` validates the initial context against it and the
   * handlers are typed by it.
   */
  context?: ZodType<T>;
  /**
   * Commit the participants' transactions in two phases once the steps are done (reserve, then
   * commit; every rollback ends by rejecting them). `false` skips the phase: for sagas whose
   * participants make their changes final at once.
   * @defaultValue true
   */
  twoPhaseCommit?: boolean;
  /**
   * How long each service has to answer a reserve (a later answer counts as a refusal) and each
   * commit or reject before it is sent again.
   * @defaultValue 30_000
   */
  commitTimeoutMs?: number;
  /** First wait before a failed commit or reject is sent again (doubling, at most a minute). @defaultValue 1_000 */
  commitRetryBackoffMs?: number;
  /**
   * Runs once the execution has succeeded (its steps done, its transactions committed), before it
   * is `finished` (saga_framework's `on_saga_success`). What it changes in the context is stored;
   * a failure is recorded (`execution.callbackErrors.onSuccess`) and changes nothing else. Like
   * any handler it may run again after a crash.
   */
  onSuccess?: (ctx: SagaContext<T>) => unknown;
  /**
   * Runs once the execution has failed and its rollback has ended, before it is `errored`, with
   * the failure that started the rollback (saga_framework's `on_saga_failure`). As `onSuccess`.
   */
  onFailure?: (ctx: SagaContext<T>, error: ErrorInfo & { step: string | null }) => unknown;
}

/** The callbacks of a definition that run when an execution ends. */
export interface SagaCallbacks {
  onSuccess?: (ctx: SagaContext<object>) => unknown;
  onFailure?: (ctx: SagaContext<object>, error: ErrorInfo & { step: string | null }) => unknown;
}

/** The options of a saga definition that the chart runs with, defaults applied. */
export interface SagaRunOptions {
  readonly twoPhaseCommit: boolean;
  readonly commitTimeoutMs: number;
  readonly commitRetryBackoffMs: number;
}

/**
 * A saga definition, built fluently and frozen by `commit()`. Its name ids its statechart
 * (`name@hash`, the hash covering the definition's structure).
 *
 * @example
 * ```ts
 * const CREATE_ORDER = new Saga('create-order')
 *   .localStep('validate').onExecute(validateOrder)
 *   .remoteStep('reserve-stock')
 *     .onExecute((ctx) => new SagaRequest('inventory.reserve', { items: ctx.items }))
 *     .onFailure((ctx) => new SagaRequest('inventory.release', { id: ctx.reservationId }))
 *   .commit();
 * ```
 */
export class Saga<T extends object = Record<string, unknown>> {
  readonly name: string;
  readonly schema: ZodType<T> | undefined;
  /** The options the chart runs with (two-phase commit, its timeout and backoff). */
  readonly options: SagaRunOptions;
  /** The callbacks that run when an execution ends. */
  readonly callbacks: SagaCallbacks;
  readonly #steps: SagaStep[] = [];
  #committed = false;
  #hash: string | undefined;

  constructor(name: string, options: SagaOptions<T> = {}) {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new InvalidSagaDefinitionError(
        String(name),
        'a saga needs a name of 1-64 letters, digits, "-" or "_", starting with a letter or digit.',
      );
    }
    this.name = name;
    this.schema = options.context;
    const ms = (key: 'commitTimeoutMs' | 'commitRetryBackoffMs', fallback: number): number => {
      const value = options[key] ?? fallback;
      if (!Number.isInteger(value) || value < 1 || value > 86_400_000) {
        throw new InvalidSagaDefinitionError(name, `${key} must be a whole number of milliseconds from 1 to 86,400,000, not ${String(value)}.`);
      }
      return value;
    };
    if (options.twoPhaseCommit !== undefined && typeof options.twoPhaseCommit !== 'boolean') {
      throw new InvalidSagaDefinitionError(name, `twoPhaseCommit must be true or false, not ${String(options.twoPhaseCommit)}.`);
    }
    for (const key of ['onSuccess', 'onFailure'] as const) {
      if (options[key] !== undefined && typeof options[key] !== 'function') throw new InvalidSagaDefinitionError(name, `${key} must be a function, not ${typeof options[key]}.`);
    }
    this.callbacks = Object.freeze({
      ...(options.onSuccess ? { onSuccess: options.onSuccess as SagaCallbacks['onSuccess'] } : {}),
      ...(options.onFailure ? { onFailure: options.onFailure as SagaCallbacks['onFailure'] } : {}),
    });
    this.options = Object.freeze({
      twoPhaseCommit: options.twoPhaseCommit ?? true,
      commitTimeoutMs: ms('commitTimeoutMs', 30_000),
      commitRetryBackoffMs: ms('commitRetryBackoffMs', 1_000),
    });
  }

  /** The steps, in order. */
  get steps(): readonly SagaStep[] {
    return this.#steps;
  }

  /** Whether `commit()` has frozen the definition. */
  get committed(): boolean {
    return this.#committed;
  }

  /** Hash of the definition's structure (step kinds, names, hooks, order, branches), once committed. */
  get hash(): string {
    if (this.#hash === undefined) this.#hash = definitionHash(this as Saga<object>);
    return this.#hash;
  }

  /** The machine id: `name@hash`. */
  get id(): string {
    return `${this.name}@${this.hash}`;
  }

  /** Adds a step that runs in the orchestrator. Default name: `step-N`. */
  localStep(name?: string): LocalSagaStep<T> {
    return this.#add(new LocalSagaStep<T>(this, this.#name(name)));
  }

  /** Adds a step that sends a request to a participant and waits for its response. */
  remoteStep(name?: string): RemoteSagaStep<T> {
    return this.#add(new RemoteSagaStep<T>(this, this.#name(name)));
  }

  /** Adds a step that runs one of several nested sagas. */
  conditionalStep(name?: string): ConditionalSagaStep<T> {
    return this.#add(new ConditionalSagaStep<T>(this, this.#name(name)));
  }

  /**
   * Validates and freezes the definition. With a callback, first adds it as a final local step
   * named `commit`.
   */
  commit(callback?: LocalHandler<T>): this {
    if (this.#committed) throw new SagaAlreadyCommittedError(this.name);
    if (callback) this.localStep('commit').onExecute(callback);
    if (this.#steps.length === 0) throw new EmptySagaError(this.name);
    for (const step of this.#steps) {
      if (step.kind === 'conditional') {
        if (step.branches.length === 0) {
          throw new InvalidSagaDefinitionError(this.name, `conditional step "${step.name}" has no branch. Add .ifThen(condition, saga) or .elseThen(saga).`);
        }
      } else if (!step.onExecuteHandler) {
        throw new UndefinedOnExecuteError(this.name, step.name);
      }
    }
    this.#committed = true;
    return this;
  }

  #name(name: string | undefined): string {
    if (this.#committed) throw new SagaAlreadyCommittedError(this.name);
    const chosen = name ?? `step-${this.#steps.length + 1}`;
    if (typeof chosen !== 'string' || !NAME.test(chosen) || RESERVED_STEP_NAMES.has(chosen)) {
      throw new InvalidSagaDefinitionError(
        this.name,
        `step name ${JSON.stringify(chosen)} is not allowed: use 1-64 letters, digits, "-" or "_" (not ${[...RESERVED_STEP_NAMES].join(', ')}).`,
      );
    }
    if (this.#steps.some((s) => s.name === chosen)) throw new DuplicateStepNameError(this.name, chosen);
    return chosen;
  }

  #add<S extends SagaStep>(step: S): S {
    this.#steps.push(step);
    return step;
  }
}
