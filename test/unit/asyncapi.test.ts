/**
 * The AsyncAPI document of the participant protocol is generated from the zod schemas the broker
 * and the SDK validate frames with, and the one shipped (asyncapi.json) is what the generator
 * gives now: a participant in another language validating by the document accepts and refuses
 * what the orchestrator does.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as protocol from '../../src/transport/protocol.js';
import { asyncApiDocument, BROKER_WIRE_DEFAULTS } from '../../src/transport/asyncapi.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
type Json = Record<string, unknown>;

/** Every frame schema protocol.ts exports: a zod object whose `type` is a literal, by that literal. */
function protocolFrames(): Map<string, z.ZodObject> {
  const found = new Map<string, z.ZodObject>();
  for (const value of Object.values(protocol)) {
    if (!(value instanceof z.ZodObject)) continue;
    const type = value.shape.type;
    if (type instanceof z.ZodLiteral) found.set(String(type.value), value);
  }
  return found;
}

const document = asyncApiDocument();
const components = document.components as { messages: Record<string, Json> };
const messages = components.messages;
const operations = document.operations as Record<string, { action: string; messages: Array<{ $ref: string }>; reply?: { messages: Array<{ $ref: string }> } }>;

/** The document's payload of a message without the descriptions the generator adds. */
function withoutDescriptions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDescriptions);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'description').map(([k, v]) => [k, withoutDescriptions(v)]));
}

/** What `z.toJSONSchema` gives for a frame, for what a parser accepts, as draft-07 (the AsyncAPI schema format's base). */
function zodJsonSchema(schema: z.ZodType): Json {
  const { $schema, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as Json;
  expect($schema).toBe('http://json-schema.org/draft-07/schema#');
  return rest;
}

/**
 * A JSON Schema validator for the keywords z.toJSONSchema gives these frames. Any other keyword
 * throws, so a schema this cannot judge fails the test instead of passing it.
 */
function valid(schema: Json, value: unknown): boolean {
  const known = new Set(['type', 'const', 'enum', 'anyOf', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'pattern', 'description']);
  for (const key of Object.keys(schema)) if (!known.has(key)) throw new Error(`the test's validator does not know the keyword "${key}"`);
  const isType = (t: string) =>
    t === 'null' ? value === null
    : t === 'integer' ? Number.isInteger(value)
    : t === 'number' ? typeof value === 'number' && Number.isFinite(value)
    : t === 'array' ? Array.isArray(value)
    : t === 'object' ? typeof value === 'object' && value !== null && !Array.isArray(value)
    : typeof value === t;
  if (schema.type !== undefined && !(Array.isArray(schema.type) ? schema.type : [schema.type]).some((t) => isType(t as string))) return false;
  if ('const' in schema && value !== schema.const) return false;
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) return false;
  if (schema.anyOf && !(schema.anyOf as Json[]).some((s) => valid(s, value))) return false;
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) return false;
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) return false;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false;
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return false;
    if (typeof schema.maximum === 'number' && value > schema.maximum) return false;
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) return false;
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) return false;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return false;
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) return false;
    if (schema.items && !value.every((item) => valid(schema.items as Json, item))) return false;
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const object = value as Json;
    const properties = (schema.properties ?? {}) as Record<string, Json>;
    if (schema.required && !(schema.required as string[]).every((k) => k in object)) return false;
    for (const [k, v] of Object.entries(object)) {
      if (properties[k]) {
        if (!valid(properties[k], v)) return false;
      } else if (schema.additionalProperties === false) return false;
      else if (typeof schema.additionalProperties === 'object' && !valid(schema.additionalProperties as Json, v)) return false;
    }
  }
  return true;
}

/** Wrong values of every kind, to put in each field in turn. */
const WRONG: unknown[] = [null, true, 0, -1, 1.5, 2 ** 60, '', 'x', 'y'.repeat(201), 'z'.repeat(2001), [], ['a'], Array.from({ length: 101 }, (_, i) => `s${i}`), Array.from({ length: 1001 }, (_, i) => `t${i}`), {}, { a: 1 }, 200, 400, 'yes', 'execute'];

/** Frames around an example: each field dropped, each field replaced by each wrong value, an unknown field added. */
function mutations(example: Json): Json[] {
  const out: Json[] = [];
  for (const key of Object.keys(example)) {
    const { [key]: _dropped, ...rest } = example;
    out.push(rest);
    for (const wrong of WRONG) out.push({ ...example, [key]: wrong });
  }
  out.push({ ...example, somethingNew: 1 });
  return out;
}

describe('the AsyncAPI document of the participant protocol', () => {
  it('is what asyncapi.json at the package root holds (run `npm run asyncapi` after changing the protocol)', () => {
    const shipped = JSON.parse(readFileSync(join(root, 'asyncapi.json'), 'utf8')) as unknown;
    expect(shipped).toEqual(document);
    expect(asyncApiDocument()).toEqual(document);
    expect(asyncApiDocument()).not.toBe(document);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; exports: Json };
    expect(pkg.files).toContain('asyncapi.json');
    expect(pkg.exports['./asyncapi.json']).toBe('./asyncapi.json');
  });

  it('is an AsyncAPI 3.0 document whose references all resolve', () => {
    expect(document.asyncapi).toBe('3.0.0');
    expect((document.info as Json).version).toBe(String(protocol.PROTOCOL_VERSION));
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (!v || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v)) (k === '$ref' && typeof x === 'string' ? refs.push(x) : walk(x));
    };
    walk(document);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of refs) {
      const target = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((node, part) => (node as Json | undefined)?.[part], document);
      expect(target, ref).toBeDefined();
    }
  });

  it('has a message for every frame schema of protocol.ts, whose payload is z.toJSONSchema of it', () => {
    const frames = protocolFrames();
    expect([...frames.keys()].sort()).toEqual(['ack', 'commit', 'error', 'hello', 'reject', 'request', 'reserve', 'response', 'vote', 'welcome']);
    expect(Object.keys(messages).sort()).toEqual([...frames.keys()].sort());
    for (const [type, schema] of frames) {
      expect(withoutDescriptions(messages[type]!.payload), type).toEqual(withoutDescriptions(zodJsonSchema(schema)));
    }
  });

  it('describes every field of every frame', () => {
    for (const [type, message] of Object.entries(messages)) {
      const properties = (message.payload as { properties: Record<string, Json> }).properties;
      const undescribed = Object.entries(properties)
        .filter(([field, p]) => field !== 'type' && typeof p.description !== 'string')
        .map(([field]) => `${type}.${field}`);
      expect(undescribed).toEqual([]);
    }
  });

  it('has the participant send what the orchestrator parses, and receive what the SDK parses', () => {
    const sent = (action: string) =>
      Object.values(operations)
        .filter((o) => o.action === action)
        .flatMap((o) => o.messages.map((m) => m.$ref.split('/').pop()!))
        .sort();
    const types = (union: { options: readonly z.ZodObject[] }) => union.options.map((o) => String((o.shape.type as z.ZodLiteral).value)).sort();
    expect(sent('send')).toEqual(types(protocol.ParticipantFrame));
    expect(sent('receive')).toEqual(types(protocol.OrchestratorFrame));
    const replies = Object.fromEntries(Object.entries(operations).filter(([, o]) => o.reply).map(([id, o]) => [id, o.reply!.messages.map((m) => m.$ref.split('/').pop())]));
    expect(replies).toEqual({ receiveRequest: ['response'], receiveReserve: ['vote'], receiveCommit: ['ack'], receiveReject: ['ack'] });
  });

  it('agrees with the zod schemas on valid and invalid frames', () => {
    const frames = protocolFrames();
    let checked = 0;
    let refused = 0;
    for (const [type, message] of Object.entries(messages)) {
      const schema = frames.get(type)!;
      const examples = (message.examples as Array<{ payload: Json }>).map((e) => e.payload);
      expect(examples.length, type).toBeGreaterThan(0);
      for (const example of examples) {
        expect(schema.safeParse(example).success, `${type} example ${JSON.stringify(example)}`).toBe(true);
        expect(valid(message.payload as Json, example), `${type} example`).toBe(true);
        for (const frame of mutations(example)) {
          const byZod = schema.safeParse(frame).success;
          expect(valid(message.payload as Json, frame), `${type}: ${JSON.stringify(frame).slice(0, 200)}`).toBe(byZod);
          checked++;
          if (!byZod) refused++;
        }
      }
    }
    // Both outcomes are exercised, many times over.
    expect(checked).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(500);
    expect(checked - refused).toBeGreaterThan(50);
  });

  it('states the broker defaults a participant sees, as WebSocketBroker.listen has them', () => {
    const source = readFileSync(join(root, 'src/transport/websocket-broker.ts'), 'utf8');
    for (const [option, value] of Object.entries(BROKER_WIRE_DEFAULTS)) {
      const match = new RegExp(`\\b${option}: z\\.number\\(\\)[^\\n]*?\\.default\\(([0-9_ *]+)\\)`).exec(source);
      expect(match, `the default of ${option} in websocket-broker.ts`).not.toBeNull();
      const declared = match![1]!
        .replaceAll('_', '')
        .split('*')
        .reduce((product, factor) => product * Number(factor.trim()), 1);
      expect(declared, option).toBe(value);
    }
    const overview = (document.info as { description: string }).description;
    expect(overview).toContain(`${BROKER_WIRE_DEFAULTS.helloTimeoutMs} ms`);
    expect(overview).toContain(`${BROKER_WIRE_DEFAULTS.heartbeatMs} ms`);
  });

  it('is linked from the README', () => {
    expect(readFileSync(join(root, 'README.md'), 'utf8').includes('(asyncapi.json)')).toBe(true);
  });
});
