import { SagaError } from './saga-error.js';

/**
 * An execution's chart failed while handling an event (a guard or an action threw). Nothing of
 * that step was stored: the execution stays at its last stored state, from which recovery or a
 * re-sent response carries it on.
 *
 * @example
 * ```ts
 * try { await manager.run(ORDER); } catch (err) { if (err instanceof SagaChartError) console.error(err.uuid, err.cause); }
 * ```
 */
export class SagaChartError extends SagaError {
  readonly uuid: string;
  constructor(uuid: string, event: string, cause: unknown) {
    super(
      'SAGA_CHART_FAILED',
      `Execution '${uuid}' failed while handling '${event}': ${cause instanceof Error ? cause.message : String(cause)}. It stays at its last stored state; see it with manager.get('${uuid}').`,
      { cause },
    );
    this.uuid = uuid;
  }
}
