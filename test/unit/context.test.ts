import { describe, expect, it } from 'vitest';
import { contextOver, storedDataOf } from '../../src/context.js';
import { SagaContext } from '../../src/index.js';

describe('SagaContext', () => {
  it('reads and writes as attributes and as a map', () => {
    const ctx = new SagaContext<Record<string, unknown>>({ orderId: 'o-1' });
    ctx.total = 42;
    ctx['currency'] = 'EUR';
    ctx.set('items', ['a', 'b']);
    expect(ctx.orderId).toBe('o-1');
    expect(ctx.get('total')).toBe(42);
    expect(ctx.has('currency')).toBe(true);
    expect(ctx.has('missing')).toBe(false);
    expect('orderId' in ctx).toBe(true);
    expect(ctx.keys()).toEqual(['orderId', 'total', 'currency', 'items']);
    expect(ctx.entries()).toEqual([
      ['orderId', 'o-1'],
      ['total', 42],
      ['currency', 'EUR'],
      ['items', ['a', 'b']],
    ]);
    expect(ctx.delete('currency')).toBe(true);
    expect(ctx.delete('currency')).toBe(false);
    ctx.update({ total: 7, paid: true });
    expect({ ...ctx }).toEqual({ orderId: 'o-1', total: 7, items: ['a', 'b'], paid: true });
  });

  it('round-trips through JSON and copies its input', () => {
    const input = { nested: { n: 1 } };
    const ctx = new SagaContext(input);
    input.nested.n = 2;
    expect(ctx.nested).toEqual({ n: 1 });
    const json = JSON.stringify(ctx);
    expect(JSON.parse(json)).toEqual({ nested: { n: 1 } });
    expect(new SagaContext(JSON.parse(json) as object).toJSON()).toEqual(ctx.toJSON());
    expect(ctx).toBeInstanceOf(SagaContext);
  });

  it('stores a key named like a method, as minos does; the method stays, and get() reads the key', () => {
    const ctx = new SagaContext<Record<string, unknown>>();
    (ctx as Record<string, unknown>)['keys'] = ['a', 'b'];
    (ctx as Record<string, unknown>).get = 1;
    expect(ctx.toJSON()).toEqual({ keys: ['a', 'b'], get: 1 });
    expect(ctx.get('keys')).toEqual(['a', 'b']);
    expect(ctx.keys()).toEqual(['keys', 'get']);
    expect(typeof ctx.get).toBe('function');
    expect(new SagaContext<Record<string, unknown>>(JSON.parse(JSON.stringify(ctx)) as Record<string, unknown>).get('get')).toBe(1);
    expect(() => {
      (ctx as unknown as Record<symbol, unknown>)[Symbol('x')] = 1;
    }).toThrow(/keys are strings/);
  });

  it('drops what JSON drops when stored', () => {
    const ctx = new SagaContext<Record<string, unknown>>();
    ctx.when = new Date(Date.UTC(2026, 0, 2));
    ctx.fn = () => 1;
    expect(ctx.toJSON()).toEqual({ when: '2026-01-02T00:00:00.000Z' });
  });
});

describe('a context over stored data (what handlers get)', () => {
  // A seeded PRNG: the same operations on every machine.
  const rng = (seed: number) => () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);

  it('stores what a plain copy would store, shares what was not touched, and never changes the data it was made over', () => {
    for (let run = 0; run < 400; run++) {
      const next = rng(run + 1);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
      const base: Record<string, unknown> = { a: 1, list: ['x', 'y'], nested: { n: 1, deep: { m: [1, 2] } }, s: 'str', nil: null };
      const original = JSON.stringify(base);
      const plain = JSON.parse(original) as Record<string, unknown>;
      const ctx = contextOver(base) as unknown as Record<string, unknown> & SagaContext;
      const keys = ['a', 'list', 'nested', 's', 'nil', 'new1', 'new2'];
      const values = () => pick<unknown>([2, 'v', null, [3], { k: 'w' }, undefined, Number.NaN, new Date(Date.UTC(2026, 0, 1)), () => 1, true]);
      for (let op = 0; op < 12; op++) {
        const key = pick(keys);
        switch (Math.floor(next() * 7)) {
          case 0: {
            const v = values();
            ctx[key] = v;
            plain[key] = v;
            break;
          }
          case 1: {
            const v = values();
            ctx.set(key, v);
            plain[key] = v;
            break;
          }
          case 2:
            expect(ctx.delete(key)).toBe(Object.hasOwn(plain, key) && delete plain[key]);
            break;
          case 3: {
            // Read an object and change it in place: the change is the handler's, the stored data is not touched.
            const got = ctx[key];
            expect(JSON.stringify(got)).toBe(JSON.stringify(plain[key]));
            if (Array.isArray(got) && Array.isArray(plain[key])) {
              got.push(op);
              (plain[key] as unknown[]).push(op);
            } else if (got && typeof got === 'object' && !(got instanceof Date)) {
              (got as Record<string, unknown>).changed = op;
              (plain[key] as Record<string, unknown>).changed = op;
            }
            break;
          }
          case 4: {
            const v = { [key]: values(), other: op };
            ctx.update(v);
            Object.assign(plain, v);
            break;
          }
          case 5:
            expect(JSON.stringify({ ...ctx })).toBe(JSON.stringify({ ...plain }));
            break;
          default:
            expect(ctx.keys()).toEqual(Object.keys(plain));
            expect(JSON.stringify(ctx.entries())).toBe(JSON.stringify(Object.entries(plain)));
        }
      }
      const stored = storedDataOf(ctx);
      expect(JSON.stringify(stored)).toBe(JSON.stringify(plain));
      expect(JSON.stringify(ctx.toJSON())).toBe(JSON.stringify(plain));
      expect(JSON.stringify(base)).toBe(original);
    }
  });

  it('shares with the stored data what the handler never read', () => {
    const base = { lines: ['a', 'b'], nested: { n: 1 }, total: 1 };
    const ctx = contextOver<Record<string, unknown>>(base);
    ctx.total = (ctx.total as number) + 1;
    (ctx.nested as { n: number }).n = 2;
    const stored = storedDataOf(ctx);
    expect(stored).toEqual({ lines: ['a', 'b'], nested: { n: 2 }, total: 2 });
    expect(stored.lines).toBe(base.lines);
    expect(stored.nested).not.toBe(base.nested);
    expect(base).toEqual({ lines: ['a', 'b'], nested: { n: 1 }, total: 1 });
  });

  it('a handler that touches nothing stores the very same data', () => {
    const base = { a: 1, list: [1, 2] };
    const ctx = contextOver(base);
    expect(ctx.a).toBe(1);
    expect(storedDataOf(ctx)).toBe(base);
  });

  it('refuses what JSON refuses when stored', () => {
    const ctx = contextOver<Record<string, unknown>>({ a: 1 });
    ctx.big = 1n;
    expect(() => storedDataOf(ctx)).toThrow(/BigInt/);
    const cyclic = contextOver<Record<string, unknown>>({});
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    cyclic.loop = loop;
    expect(() => storedDataOf(cyclic)).toThrow(TypeError);
  });
});

describe('SagaContext as a map (minos parity)', () => {
  it('get with a fallback, values, size, pop, clear and iteration over the keys', () => {
    const ctx = new SagaContext<Record<string, unknown>>({ a: 1, b: [2], c: null });
    expect(ctx.get('a', 9)).toBe(1);
    expect(ctx.get('c', 9)).toBeNull();
    expect(ctx.get('missing', 9)).toBe(9);
    expect(ctx.get('missing')).toBeUndefined();
    expect(ctx.values()).toEqual([1, [2], null]);
    expect(ctx.size).toBe(3);
    expect([...ctx]).toEqual(['a', 'b', 'c']);
    expect(ctx.pop('b')).toEqual([2]);
    expect(ctx.pop('b', 'gone')).toBe('gone');
    expect(ctx.keys()).toEqual(['a', 'c']);
    ctx.set('size', 5); // a key named like a method is written and read with set / get
    expect(ctx.get('size')).toBe(5);
    expect(ctx.size).toBe(3);
    ctx.clear();
    expect(ctx.size).toBe(0);
    expect(ctx.toJSON()).toEqual({});
  });

  it('over stored data, pop and clear never change that data', () => {
    const base = { a: { n: 1 }, b: 2 };
    const ctx = contextOver<Record<string, unknown>>(base);
    expect(ctx.pop('a')).toEqual({ n: 1 });
    expect(storedDataOf(ctx)).toEqual({ b: 2 });
    ctx.clear();
    expect(storedDataOf(ctx)).toEqual({});
    expect(base).toEqual({ a: { n: 1 }, b: 2 });
  });
});
