import type { InspectionEvent, Observer } from 'xstate';
import type { SagaMachine } from '../../machines/compile.js';
import type { TableEvent, TableObserver, TableState } from '../../machines/table/state-table.js';

/** An inspection observer, e.g. `createBrowserInspector().inspect` from `@statelyai/inspect`. */
export type InspectObserver = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** What XState's inspection events carry of an actor, and what `@statelyai/inspect` reads of it. */
interface ActorRefStandIn {
  id: string;
  sessionId: string;
  src: string;
  logic: SagaMachine;
  _parent: undefined;
  getSnapshot(): unknown;
  toJSON(): { xstate$$type: 1; id: string };
}

/**
 * Emits the inspection events that `@statelyai/inspect` uses (`@xstate.actor`, `@xstate.event`,
 * `@xstate.snapshot`) for executions run on the transition table, as an XState actor would: one
 * actor per execution, whose id and session id are the execution's uuid, from `run()` to its end
 * across pauses on disk and restores. Built only when an inspector is attached.
 */
export class ExecutionInspector {
  readonly #next: (event: InspectionEvent) => void;
  /** Executions announced with `@xstate.actor` in this process and not ended yet. */
  readonly #announced = new Set<string>();
  readonly #onError: (err: unknown) => void;

  constructor(observer: InspectObserver, onError: (err: unknown) => void) {
    this.#next = typeof observer === 'function' ? observer : (event) => observer.next?.(event);
    this.#onError = onError;
  }

  /** The table observer of one execution; announces it the first time this process sees it. */
  observe(uuid: string, machine: SagaMachine): TableObserver {
    let current: TableState | undefined;
    const ref: ActorRefStandIn = {
      id: uuid,
      sessionId: uuid,
      src: machine.id,
      logic: machine,
      _parent: undefined,
      getSnapshot: () => (current ? snapshotOf(current) : undefined),
      toJSON: () => ({ xstate$$type: 1, id: uuid }),
    };
    const emit = (event: Record<string, unknown>) => {
      try {
        this.#next(event as unknown as InspectionEvent);
      } catch (err) {
        this.#onError(err);
      }
    };
    const announce = (state: TableState) => {
      current = state;
      if (this.#announced.has(uuid)) return;
      this.#announced.add(uuid);
      emit({ type: '@xstate.actor', actorRef: ref, rootId: uuid });
    };
    return {
      event: (state: TableState, event: TableEvent) => {
        announce(state);
        emit({ type: '@xstate.event', actorRef: ref, sourceRef: undefined, event, rootId: uuid });
      },
      snapshot: (state: TableState, event: TableEvent) => {
        announce(state);
        emit({ type: '@xstate.snapshot', actorRef: ref, snapshot: snapshotOf(state), event, rootId: uuid });
        if (state.status === 'done' || state.leaf.node.key === 'errored') this.#announced.delete(uuid);
      },
    };
  }
}

/** The snapshot an inspector is shown: what an XState machine snapshot serialises to. */
function snapshotOf(state: TableState): Record<string, unknown> {
  const children: Record<string, { xstate$$type: 1; id: string }> = {};
  for (const id of state.children.keys()) children[id] = { xstate$$type: 1, id };
  return {
    status: state.status,
    value: state.leaf.value,
    context: state.context,
    children,
    historyValue: {},
    tags: [...state.leaf.tags],
    output: state.output,
    error: undefined,
  };
}
