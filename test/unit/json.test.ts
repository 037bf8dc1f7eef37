import { describe, expect, it } from 'vitest';
import { cloneJson, MAX_JSON_DEPTH, previewJson, toErrorInfo } from '../../src/json.js';

/** What cloneJson must equal: the JSON round trip, or its error. */
const roundTrip = (value: unknown) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
const outcome = (fn: () => unknown) => {
  try {
    return { value: fn() };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
};

class Money {
  constructor(readonly amount: number) {}
}

describe('cloneJson', () => {
  const cases: Array<[string, () => unknown]> = [
    ['a plain tree', () => ({ orderId: 'o-1', lines: ['a', 'b'], total: 12.5, paid: false, note: null, nested: { deep: [{ x: 1 }] } })],
    ['integer-like keys, in JSON order', () => ({ b: 1, 2: 'two', a: 2, 1: 'one' })],
    ['undefined values and functions in an object', () => ({ a: undefined, f: () => 1, b: 2 })],
    ['undefined and functions in an array', () => [1, undefined, () => 1, 'x']],
    ['an array with holes', () => [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['non-finite numbers and -0', () => ({ nan: NaN, inf: Infinity, negInf: -Infinity, negZero: -0, list: [-0, NaN] })],
    ['a Date', () => ({ at: new Date(1_700_000_000_000) })],
    ['a class instance', () => ({ price: new Money(3) })],
    ['an own toJSON', () => ({ v: { toJSON: () => 'custom' } })],
    ['a null-prototype object', () => Object.assign(Object.create(null) as object, { a: 1 })],
    ['a __proto__ key', () => JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown],
    ['boxed primitives', () => ({ s: new String('x'), n: new Number(2), b: new Boolean(false) })], // eslint-disable-line no-new-wrappers
    ['a symbol-keyed property', () => ({ [Symbol('s')]: 1, a: 2 })],
    ['a tree deeper than the direct copy goes', () => Array.from({ length: 100 }).reduce<unknown>((inner) => ({ inner }), 'leaf')],
    ['a string, a number, null', () => ['just a string', 42, null]],
    ['lone surrogates and escapes', () => ({ s: '\ud800 "quoted" \n \u0000' })],
    ['a BigInt', () => ({ big: 10n })],
  ];
  for (const [name, make] of cases) {
    it(`equals the JSON round trip for ${name}`, () => {
      const value = make();
      const expected = outcome(() => roundTrip(value));
      const actual = outcome(() => cloneJson(value));
      expect(actual).toEqual(expected);
      if ('value' in actual && typeof actual.value === 'object' && actual.value !== null) {
        expect(Object.getPrototypeOf(actual.value)).toBe(Object.getPrototypeOf((expected as { value: object }).value));
        expect(JSON.stringify(actual.value)).toBe(JSON.stringify((expected as { value: object }).value));
      }
    });
  }

  it('refuses a Map or a Set, which JSON would store as {} without a word', () => {
    expect(() => cloneJson({ map: new Map([['a', 1]]) })).toThrow(/a Map at "map" is not JSON/);
    expect(() => cloneJson({ nested: [{ tags: new Set(['x']) }] })).toThrow(/a Set at "tags" is not JSON/);
    expect(() => cloneJson(new Map())).toThrow(/a Map is not JSON/);
  });

  it('refuses a tree nested deeper than it can store safely, with a clear message, and takes one just under', () => {
    const nest = (depth: number) => Array.from({ length: depth }).reduce<unknown>((inner) => [inner], 'leaf');
    expect(() => cloneJson(nest(5_000))).toThrow(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(JSON.stringify(cloneJson(nest(MAX_JSON_DEPTH - 1)))).toBe(JSON.stringify(nest(MAX_JSON_DEPTH - 1)));
  });

  it('throws JSON’s own error on a cycle', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => cloneJson(cyclic)).toThrow(TypeError);
    expect(() => cloneJson(cyclic)).toThrow(/circular/i);
  });

  it('returns a copy that shares nothing mutable with the original', () => {
    const original = { list: [{ n: 1 }], inner: { n: 2 } };
    const copy = cloneJson(original);
    copy.list[0]!.n = 99;
    copy.inner.n = 99;
    copy.list.push({ n: 3 });
    expect(original).toEqual({ list: [{ n: 1 }], inner: { n: 2 } });
  });

  it('does not pollute prototypes through a __proto__ key', () => {
    const copy = cloneJson(JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(copy)).toEqual(['__proto__']);
  });

  it('matches the round trip on many random JSON-ish values', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const gen = (depth: number): unknown => {
      const leaves = ['s', '', 0, -0, 1.5, NaN, Infinity, true, false, null, undefined, new Date(0)];
      if (depth > 3 || rand() < 0.4) return pick(leaves);
      if (rand() < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => gen(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, (_, k) => [pick(['a', 'b', '1', '0', `k${k}`]), gen(depth + 1)]));
    };
    for (let i = 0; i < 2_000; i++) {
      const value = gen(0);
      expect(outcome(() => cloneJson(value))).toEqual(outcome(() => roundTrip(value)));
    }
  });
});

describe('previewJson and toErrorInfo: what goes into error messages is bounded', () => {
  it('cuts a long value, renders what is too deep or not JSON as a placeholder, and never throws', () => {
    const long = previewJson({ pad: 'x'.repeat(10_000) }, 100);
    expect(long.length).toBeLessThan(140);
    expect(long).toMatch(/… \(10010 characters\)$/);
    const deep = Array.from({ length: 10_000 }).reduce<unknown>((inner) => ({ inner }), 1);
    expect(previewJson(deep)).toBe('[a value nested deeper than 32 levels]');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(previewJson(cyclic)).toBe('[a value nested deeper than 32 levels]');
    expect(previewJson({ big: 1n })).toMatch(/^\[a value that is not JSON: /);
    expect(previewJson(undefined)).toBe('undefined');
  });

  it('keeps an error message and code within bounds', () => {
    const info = toErrorInfo(Object.assign(new Error('m'.repeat(50_000)), { code: 'C'.repeat(500) }), 'SAGA_HANDLER_FAILED');
    expect(info.code).toBe('SAGA_HANDLER_FAILED');
    expect(info.message.length).toBeLessThan(2_100);
    const deep = Array.from({ length: 10_000 }).reduce<unknown>((inner) => [inner], 0);
    expect(toErrorInfo(deep, 'X')).toEqual({ code: 'X', message: '[a value nested deeper than 32 levels]' });
  });
});
