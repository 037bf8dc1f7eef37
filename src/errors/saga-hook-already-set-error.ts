import { SagaError } from './saga-error.js';

/**
 * A step hook (`onExecute`, `onSuccess`, `onError`, `onFailure`, `elseThen`, `timeout`, `retry`)
 * was set twice on the same step.
 *
 * @example
 * ```ts
 * saga.localStep('a').onExecute(f).onExecute(g); // throws SagaHookAlreadySetError
 * ```
 */
export class SagaHookAlreadySetError extends SagaError {
  readonly sagaName: string;
  readonly step: string;
  readonly hook: string;
  constructor(sagaName: string, step: string, hook: string) {
    super('SAGA_HOOK_ALREADY_SET', `Step '${step}' of saga '${sagaName}' already has ${hook}. Set each hook once per step.`);
    this.sagaName = sagaName;
    this.step = step;
    this.hook = hook;
  }
}
