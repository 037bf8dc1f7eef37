import type { Saga } from '../src/definition/saga.js';
import { compileSaga } from './compile.js';

/**
 * The least serialization depth offered: enough for the snapshots (the chart's context holds the
 * saga's context a few levels down) of contexts nested up to about 60 levels. The browser
 * inspector also uses it as the most entries of one object or array it sends.
 */
const SNAPSHOT_DEPTH = 64;

/** Nesting depth of a definition as `@statelyai/inspect` serializes it: a function counts as an object (`{ type: name }`). */
function depthOf(value: unknown, path: Set<object>): number {
  if (typeof value === 'function') return 1;
  if (value === null || typeof value !== 'object' || path.has(value)) return 0;
  path.add(value);
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, path));
  path.delete(value);
  return deepest + 1;
}

/**
 * Options for `@statelyai/inspect`'s `createBrowserInspector` and `createWebSocketInspector` so
 * that the definitions of `sagas` reach the inspector whole. The inspector serializes a machine's
 * definition (and each snapshot) to `serializationDepthLimit` levels, 10 by default, and replaces
 * what is deeper with `"[Object]"` or `"[Array]"`; a saga's chart nests its steps' states (and a
 * conditional step's branches their own steps) deeper than that. The depth given is the deepest
 * compiled definition's, and at least 64, for the snapshots.
 *
 * @example
 * ```ts
 * import { createWebSocketInspector } from '@statelyai/inspect';
 * const inspector = createWebSocketInspector({ url: 'ws://localhost:8080', ...inspectorOptions([CREATE_ORDER]) });
 * const manager = new SagaManager({ broker, sagas: [CREATE_ORDER], inspect: inspector.inspect });
 * ```
 */
export function inspectorOptions(sagas: ReadonlyArray<Saga<object>>): { serializationDepthLimit: number } {
  let deepest = 0;
  for (const saga of sagas) deepest = Math.max(deepest, depthOf(compileSaga(saga).config, new Set()));
  return { serializationDepthLimit: Math.max(SNAPSHOT_DEPTH, deepest) };
}
