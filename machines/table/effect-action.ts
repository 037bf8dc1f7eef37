/** Marks an action of a chart as an effect: what the runtime is asked to do (send a request, arm a deadline). */
export const EFFECT = Symbol.for('sagachart.effect');

/** What an effect action's maker sees: the state's context and the event being handled. */
export interface EffectArgs<TContext> {
  context: TContext;
  event: { type: string };
}

/**
 * An action that declares an effect. XState runs it as a custom action that does nothing (a
 * plain XState actor leaves effects to whoever drives it); the transition table evaluates
 * `make` and hands the result to the runtime, in the order the chart's actions run.
 */
export interface EffectAction<TContext, TEffect> {
  (args: EffectArgs<TContext>, params?: unknown): void;
  readonly [EFFECT]: (args: EffectArgs<TContext>) => TEffect;
}

/**
 * Declares an effect as an action of a chart.
 *
 * @example
 * ```ts
 * entry: [assign({ deadline }), effectAction(({ context }) => ({ kind: 'request', request: requestOf(context) }))]
 * ```
 */
export function effectAction<TContext, TEffect>(make: (args: EffectArgs<TContext>) => TEffect): EffectAction<TContext, TEffect> {
  const action = (() => undefined) as unknown as { [EFFECT]?: unknown };
  action[EFFECT] = make;
  return action as EffectAction<TContext, TEffect>;
}

/** The effect maker of an action, if it is an effect action. */
export function effectMakerOf(action: unknown): ((args: EffectArgs<unknown>) => unknown) | undefined {
  if (typeof action !== 'function') return undefined;
  const make = (action as { [EFFECT]?: unknown })[EFFECT];
  return typeof make === 'function' ? (make as (args: EffectArgs<unknown>) => unknown) : undefined;
}
