import type { CompiledSaga } from '../../machines/compile.js';
import { isTransactionChild, waitKey, waitOwner, type SagaChartEffect } from '../../machines/effects.js';
import { isAwaitingCommit, sagaStatusOf, type SagaSnapshotLike } from '../../machines/read.js';
import type { TableEffect, TableEvent, TableObserver, TableState } from '../../machines/table/state-table.js';
import type { HandlerInput, HandlerOutput, SagaMachineContext, SagaMachineEvent, SagaMachineInput } from '../../machines/types.js';
import { previewJson } from '../json.js';
import type { OutgoingRequest } from '../messages/outgoing-request.js';
import type { SagaTimer } from '../messages/saga-timer.js';
import type { SagaRecord } from '../repositories/saga-repository.js';
import type { SagaStatus } from '../status.js';

/** What one remote-step child waits on: its request (in the outbox) and its deadline. */
interface Wait {
  request?: OutgoingRequest;
  timer?: SagaTimer | null;
}

/**
 * One execution held in memory while it runs: its definition, its live state on the definition's
 * transition table, the version it was last stored at, and what it waits on. What it waits on is
 * kept from the chart's effects (a request declared, a deadline declared, a wait settled, a child
 * stopped) and from the stored record after a restore, never dug out of the state.
 */
export class LiveExecution implements SagaSnapshotLike {
  readonly uuid: string;
  readonly definition: CompiledSaga;
  readonly state: TableState;
  /** The stored version; `null` before the first store. */
  version: number | null;
  /** Release from memory once paused and stored (a response restores it). */
  pauseOnDisk: boolean;
  /** Inspection of this execution, only when an inspector is attached. */
  readonly observer: TableObserver | undefined;
  readonly #waits = new Map<string, Wait>();
  /** Waits whose request was declared since the last store: sent once that store succeeds. */
  readonly #unsent = new Set<string>();

  private constructor(definition: CompiledSaga, state: TableState, version: number | null, pauseOnDisk: boolean, observer: TableObserver | undefined) {
    this.definition = definition;
    this.state = state;
    this.uuid = (state.context as SagaMachineContext).uuid;
    this.version = version;
    this.pauseOnDisk = pauseOnDisk;
    this.observer = observer;
  }

  /** A new execution in its `created` state, on `definition`'s table. */
  static create(definition: CompiledSaga, input: SagaMachineInput, pauseOnDisk: boolean, observe?: (uuid: string) => TableObserver | undefined): LiveExecution {
    const observer = observe?.(input.uuid);
    const { state, effects } = definition.table.start(input, observer);
    const execution = new LiveExecution(definition, state, null, pauseOnDisk, observer);
    execution.#note(effects);
    return execution;
  }

  /**
   * An execution restored from its stored record: the state from the snapshot (the table refuses
   * one that does not fit with a `RangeError`), what it waits on from the outbox and timer. Returns
   * the effects of starting it (handlers that were running when it was stored run again).
   */
  static restore(definition: CompiledSaga, record: SagaRecord, observe?: (uuid: string) => TableObserver | undefined): { execution: LiveExecution; effects: TableEffect[] } {
    const observer = observe?.(record.uuid);
    const { state, effects } = definition.table.restore(record.snapshot, observer);
    const context = state.context as Partial<SagaMachineContext>;
    if (context.uuid !== record.uuid) throw new RangeError(`snapshot.context.uuid is ${previewJson(context.uuid)}, not the record's uuid`);
    const execution = new LiveExecution(definition, state, record.version, true, observer);
    for (const request of record.outbox) execution.#wait(waitKey(request.step, request.phase)).request = request;
    if (record.timer) execution.#wait(waitKey(record.timer.event.step, record.timer.event.phase)).timer = record.timer;
    return { execution, effects: execution.#note(effects) };
  }

  get status(): SagaStatus {
    return sagaStatusOf(this.snapshot);
  }

  get awaitingCommit(): boolean {
    return isAwaitingCommit(this.snapshot);
  }

  /** What readers and views take: the state's value, context and tags (the execution itself). */
  get snapshot(): SagaSnapshotLike {
    return this;
  }

  get value(): SagaSnapshotLike['value'] {
    return this.state.leaf.value;
  }

  get context(): SagaMachineContext {
    return this.state.context as SagaMachineContext;
  }

  hasTag(tag: string): boolean {
    return this.state.leaf.tags.has(tag);
  }

  get createdAt(): number {
    return (this.state.context as SagaMachineContext).createdAt;
  }

  /** Requests waited on: the outbox. */
  outbox(): OutgoingRequest[] {
    const out: OutgoingRequest[] = [];
    for (const wait of this.#waits.values()) if (wait.request) out.push(wait.request);
    return out;
  }

  /** The earliest deadline waited on, or `null`. */
  timer(): SagaTimer | null {
    let first: SagaTimer | null = null;
    for (const wait of this.#waits.values()) if (wait.timer && (first === null || wait.timer.at < first.at)) first = wait.timer;
    return first;
  }

  /** Whether the chart would take `event` now (XState's `can`). */
  can(event: SagaMachineEvent): boolean {
    return this.definition.table.can(this.state, event as unknown as TableEvent);
  }

  /** Whether the execution waits for the answer to `requestId`. */
  awaits(requestId: string): boolean {
    for (const wait of this.#waits.values()) if (wait.request?.requestId === requestId) return true;
    return false;
  }

  /** Requests declared since the last store, to send now that it succeeded. */
  takeUnsent(): OutgoingRequest[] {
    const out: OutgoingRequest[] = [];
    for (const key of this.#unsent) {
      const request = this.#waits.get(key)?.request;
      if (request) out.push(request);
    }
    this.#unsent.clear();
    return out;
  }

  /**
   * One external event through the table, then every handler it asks for, until the execution
   * rests. Synchronous all the way when the handlers are: a promise only when one of them is async.
   */
  step(event: TableEvent): void | Promise<void> {
    return this.run(this.definition.table.send(this.state, event, this.observer));
  }

  /**
   * Applies effects and runs the handlers they ask for, feeding each outcome back, until none is
   * left. Synchronous handlers are run in the same tick; an async one is awaited (other
   * executions go on meanwhile; this one takes no other event, as its mailbox holds it).
   */
  run(effects: TableEffect[]): void | Promise<void> {
    return this.#drain(this.#note(effects), 0, []);
  }

  #drain(tasks: TableEffect[], from: number, next: TableEffect[]): void | Promise<void> {
    const { table, runHandler } = this.definition;
    for (;;) {
      for (let i = from; i < tasks.length; i++) {
        const task = tasks[i] as Extract<TableEffect, { type: 'task' }>;
        let output: HandlerOutput | Promise<HandlerOutput>;
        try {
          output = runHandler(task.input as HandlerInput);
        } catch (err) {
          // The runner turns every handler failure into data; this is its own failure.
          next.push(...table.rejectTask(this.state, task.path, err, this.observer));
          continue;
        }
        if (output instanceof Promise) {
          return output.then(
            (value) => {
              next.push(...table.resolveTask(this.state, task.path, value, this.observer));
              return this.#drain(tasks, i + 1, next);
            },
            (err: unknown) => {
              next.push(...table.rejectTask(this.state, task.path, err, this.observer));
              return this.#drain(tasks, i + 1, next);
            },
          );
        }
        next.push(...table.resolveTask(this.state, task.path, output, this.observer));
      }
      if (!next.length) return;
      tasks = this.#note(next);
      from = 0;
      next = [];
      if (!tasks.length) return;
    }
  }

  /** Records what effects say the execution waits on; returns the tasks among them. */
  #note(effects: TableEffect[]): TableEffect[] {
    const tasks: TableEffect[] = [];
    for (const effect of effects) {
      if (effect.type === 'task') tasks.push(effect);
      else if (effect.type === 'stopped') this.#stopped(effect.path[effect.path.length - 1]!);
      else if (Array.isArray(effect.effect)) for (const e of effect.effect as SagaChartEffect[]) this.#apply(e);
      else this.#apply(effect.effect as SagaChartEffect);
    }
    return tasks;
  }

  /** One effect the chart declared (a remote step declares one at a time, a transaction phase a list). */
  #apply(e: SagaChartEffect): void {
    if (e.kind === 'request') {
      this.#wait(e.key).request = e.request;
      this.#unsent.add(e.key);
    } else if (e.kind === 'timer') this.#wait(e.key).timer = e.timer;
    else this.#settle(e.key);
  }

  /** A child was stopped: whatever it waited on is void (a transaction child waits on one request per service). */
  #stopped(child: string): void {
    this.#settle(child);
    if (!isTransactionChild(child)) return;
    for (const key of this.#waits.keys()) if (waitOwner(key) === child) this.#settle(key);
  }

  #wait(key: string): Wait {
    let wait = this.#waits.get(key);
    if (!wait) this.#waits.set(key, (wait = {}));
    return wait;
  }

  #settle(key: string): void {
    this.#waits.delete(key);
    this.#unsent.delete(key);
  }
}
