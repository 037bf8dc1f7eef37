import { createInspector } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { compileSaga, inspectorOptions, Saga, SagaRequest } from '../../src/index.js';

/** The definition @statelyai/inspect sends for an actor of `saga`'s machine, serialized to `depth` levels (undefined: its default). */
async function definitionSent(saga: Saga<object>, depth?: number): Promise<string> {
  const frames: Array<{ type: string; definition?: string }> = [];
  const inspector = createInspector({ send: (frame: never) => frames.push(frame), start() {}, stop() {} } as never, depth === undefined ? {} : { serializationDepthLimit: depth });
  const machine = compileSaga(saga);
  inspector.inspect.next?.({ type: '@xstate.actor', rootId: 'x', actorRef: { id: 'x', sessionId: 'x', logic: machine, _parent: undefined, getSnapshot: () => undefined } } as unknown as InspectionEvent);
  while (!frames.length) await new Promise((resolve) => setTimeout(resolve, 1));
  return frames[0]!.definition!;
}

/** A saga whose conditional steps nest `levels` deep, a remote step at the bottom. */
function nested(levels: number): Saga<object> {
  let saga = new Saga('leaf').remoteStep('call').onExecute(() => new SagaRequest('svc.call', {})).commit();
  for (let i = 0; i < levels; i++) saga = new Saga(`level-${i}`).conditionalStep(`branch-${i}`).ifThen(() => true, saga).commit();
  return saga;
}

const CUT = /"\[(Object|Array)\]"/;

describe('inspectorOptions', () => {
  it("gives @statelyai/inspect a depth that sends a definition whole, where the inspector's default cuts it", async () => {
    const saga = nested(1);
    expect(await definitionSent(saga)).toMatch(CUT);
    const { serializationDepthLimit } = inspectorOptions([saga]);
    expect(serializationDepthLimit).toBe(64);
    expect(await definitionSent(saga, serializationDepthLimit)).not.toMatch(CUT);
  });

  it('goes past 64 for a definition deeper than that: exactly as deep as it is', async () => {
    const deep = nested(12);
    const { serializationDepthLimit } = inspectorOptions([nested(1), deep]);
    expect(serializationDepthLimit).toBeGreaterThan(64);
    const whole = await definitionSent(deep, serializationDepthLimit);
    expect(whole).not.toMatch(CUT);
    expect(whole).toContain('"branch-0"');
    expect(await definitionSent(deep, serializationDepthLimit - 1)).toMatch(CUT);
  });
});
