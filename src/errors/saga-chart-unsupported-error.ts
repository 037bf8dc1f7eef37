import { SagaError } from './saga-error.js';

/**
 * A statechart uses a feature the transition table does not implement (parallel or history
 * states, delayed transitions, spawning, raised or emitted events, built-in guards…). The table
 * refuses the chart when it is built, naming the state, rather than running it differently from
 * XState.
 *
 * @example
 * ```ts
 * try { StateTable.of(machine); } catch (err) { if (err instanceof SagaChartUnsupportedError) console.log(err.stateId, err.feature); }
 * ```
 */
export class SagaChartUnsupportedError extends SagaError {
  /** Id of the state node that uses the feature. */
  readonly stateId: string;
  readonly feature: string;
  constructor(stateId: string, feature: string) {
    super(
      'SAGA_CHART_UNSUPPORTED',
      `State "#${stateId}" uses ${feature}, which sagachart's transition table does not implement; express it with the supported subset (compound, atomic and final states, eventless and event transitions, inline guards, assign, sendTo a child, invoke by string src).`,
    );
    this.stateId = stateId;
    this.feature = feature;
  }
}
