/**
 * The vocabulary of the transition table: the live state of a machine and its children, the
 * effects a step returns, XState's persisted snapshot shape, and the observer of a machine.
 */
import type { StateValue } from 'xstate';
import type { Leaf, TaskLogic } from './plan.js';
import type { StateTable } from './state-table.js';

/** An event as the table takes it: XState's `EventObject`. */
export interface TableEvent {
  type: string;
  [key: string]: unknown;
}

/** A task child: invoked logic the runtime runs (a handler), with XState's snapshot of it. */
export interface TaskChild {
  kind: 'task';
  src: string;
  logic: TaskLogic;
  input: unknown;
  snapshot: { status: string; output?: unknown; error?: unknown; input?: unknown };
}

/** A child machine, interpreted by its own table. */
export interface MachineChild {
  kind: 'machine';
  src: string;
  table: StateTable;
  state: TableState;
  /** Effects and deferred work of its initial macrostep, released when it starts (as XState starts it). */
  pending: { effects: TableEffect[]; deferred: Deferred[] } | null;
}

export type Child = TaskChild | MachineChild;

/**
 * The live state of one machine (an execution, or a child of one): what XState keeps in a
 * machine snapshot, with the active atomic state precomputed. The table mutates it in place;
 * `persist()` gives XState's persisted snapshot of it.
 */
export interface TableState {
  leaf: Leaf<StateTable>;
  status: 'active' | 'done';
  context: unknown;
  /** By id, in the order they were invoked (a Map: children come and go at every step). */
  children: Map<string, Child>;
  output: unknown;
}

/**
 * What a step asked for, in the order the chart's actions ran. `path` names the actor that asked:
 * `[]` for the machine itself, `[childId]` for a child.
 */
export type TableEffect =
  /** Run invoked logic and report its outcome with `resolveTask` / `rejectTask`. */
  | { type: 'task'; path: readonly string[]; src: string; input: unknown }
  /** An effect the chart declared with `effectAction`. */
  | { type: 'effect'; path: readonly string[]; effect: unknown }
  /** A child was stopped: whatever it asked for is void. */
  | { type: 'stopped'; path: readonly string[] };

/** XState's persisted snapshot of a machine (what `actor.getPersistedSnapshot()` returns). */
export interface PersistedMachineSnapshot {
  status: 'active' | 'done';
  output?: unknown;
  error?: unknown;
  value: StateValue;
  historyValue: Record<string, never>;
  context: unknown;
  children: Record<string, { snapshot: unknown; src: string; systemId?: undefined; syncSnapshot: false }>;
}

/** Called for the top-level machine only, when set: the events it takes and the snapshots after them. */
export interface TableObserver {
  event(state: TableState, event: TableEvent): void;
  snapshot(state: TableState, event: TableEvent): void;
}

/** Work a macrostep leaves for after it, in XState's order: events to children, children started. */
export type Deferred = { kind: 'send'; to: string; event: TableEvent } | { kind: 'start'; id: string };

