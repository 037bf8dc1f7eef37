import { compileDefinition, type CompiledSaga } from '../../machines/compile.js';
import type { Clock } from '../clock.js';
import type { Saga } from '../definition/saga.js';
import { SagaDefinitionMismatchError } from '../errors/saga-definition-mismatch-error.js';
import { SagaNotCommittedError } from '../errors/saga-not-committed-error.js';
import { SagaNotRegisteredError } from '../errors/saga-not-registered-error.js';

/**
 * The saga definitions a manager knows, by name and by definition hash. Several versions of one
 * saga may be registered: new runs use the last registered, stored executions restore onto the
 * version they started with.
 */
export class SagaRegistry {
  readonly #clock: Clock;
  readonly #byName = new Map<string, Map<string, CompiledSaga>>();
  readonly #latest = new Map<string, CompiledSaga>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  register<T extends object>(saga: Saga<T>): CompiledSaga {
    const def = saga as unknown as Saga<object>;
    if (!def.committed) throw new SagaNotCommittedError(def.name);
    const compiled = compileDefinition(def, { clock: this.#clock });
    let versions = this.#byName.get(def.name);
    if (!versions) this.#byName.set(def.name, (versions = new Map()));
    versions.set(def.hash, compiled);
    this.#latest.set(def.name, compiled);
    return compiled;
  }

  /** The compiled definition for a run: registers `saga` if it is not yet known. */
  forRun<T extends object>(saga: Saga<T>): CompiledSaga {
    const def = saga as unknown as Saga<object>;
    if (!def.committed) throw new SagaNotCommittedError(def.name);
    return this.#byName.get(def.name)?.get(def.hash) ?? this.register(def);
  }

  /** The compiled definition a stored execution started on. */
  forRecord(sagaName: string, definitionHash: string): CompiledSaga {
    const versions = this.#byName.get(sagaName);
    if (!versions) throw new SagaNotRegisteredError(sagaName);
    const compiled = versions.get(definitionHash);
    if (!compiled) throw new SagaDefinitionMismatchError(sagaName, definitionHash, [...versions.keys()]);
    return compiled;
  }

  /** The last registered definition of `name`. */
  latest(name: string): CompiledSaga {
    const compiled = this.#latest.get(name);
    if (!compiled) throw new SagaNotRegisteredError(name);
    return compiled;
  }

  names(): string[] {
    return [...this.#latest.keys()];
  }

  /** Every registered definition, each version of each saga. */
  all(): CompiledSaga[] {
    return [...this.#byName.values()].flatMap((versions) => [...versions.values()]);
  }
}
