import { describe, expect, it } from 'vitest';
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

  it('refuses to overwrite a method name as an attribute, with a hint', () => {
    const ctx = new SagaContext<Record<string, unknown>>();
    expect(() => {
      (ctx as Record<string, unknown>).get = 1;
    }).toThrow(/ctx\.set\("get", value\)/);
    ctx.set('get', 1);
    expect(ctx.toJSON()).toEqual({ get: 1 });
  });

  it('drops what JSON drops when stored', () => {
    const ctx = new SagaContext<Record<string, unknown>>();
    ctx.when = new Date(Date.UTC(2026, 0, 2));
    ctx.fn = () => 1;
    expect(ctx.toJSON()).toEqual({ when: '2026-01-02T00:00:00.000Z' });
  });
});
