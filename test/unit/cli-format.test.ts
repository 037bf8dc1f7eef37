/**
 * The CLI's terminal output: colours only for a terminal without NO_COLOR, columns aligned on the
 * visible text (escape codes do not count), and the times and durations it prints.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { duration, Formatter, time, useColour } from '../../src/cli/format.js';
import type { SagaListPage } from '../../src/index.js';

const ESC = '\u001b[';
const page: SagaListPage = {
  items: [
    { uuid: 'u-1', sagaName: 'order', definitionHash: 'abc', version: 3, status: 'errored', createdAt: 0, updatedAt: 1_500, deadline: null },
    { uuid: 'u-22', sagaName: 'order', definitionHash: 'abc', version: 1, status: 'finished', createdAt: 0, updatedAt: 2_000, deadline: 60_000 },
  ],
  cursor: 'next-page',
};
const strip = (s: string) => s.replace(/\u001b\[\d+m/g, '');

describe('colours', () => {
  const saved = process.env.NO_COLOR;
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
  });

  it('are used for a terminal, and not for a pipe or with NO_COLOR set', () => {
    delete process.env.NO_COLOR;
    expect(useColour({ isTTY: true } as NodeJS.WriteStream)).toBe(true);
    expect(useColour({ isTTY: false } as NodeJS.WriteStream)).toBe(false);
    process.env.NO_COLOR = '1';
    expect(useColour({ isTTY: true } as NodeJS.WriteStream)).toBe(false);
  });

  it('do not move the columns', () => {
    const plain = new Formatter(false).list(page);
    const coloured = new Formatter(true).list(page);
    expect(plain).not.toContain(ESC);
    expect(coloured).toContain(`${ESC}31merrored${ESC}39m`);
    expect(strip(coloured)).toBe(plain);
    expect(plain.split('\n').slice(0, 3)).toEqual([
      '  UUID  SAGA       STATUS    CREATED                   UPDATED                   DEADLINE',
      '  u-1   order@abc  errored   1970-01-01 00:00:00.000Z  1970-01-01 00:00:01.500Z',
      '  u-22  order@abc  finished  1970-01-01 00:00:00.000Z  1970-01-01 00:00:02.000Z  1970-01-01 00:01:00.000Z',
    ]);
    expect(plain).toContain('More: add --cursor next-page');
  });
});

it('prints times in UTC and durations in the unit that reads best', () => {
  expect(time(Date.UTC(2026, 11, 2, 16, 29, 3, 123))).toBe('2026-12-02 16:29:03.123Z');
  expect([duration(0, 12), duration(0, 1_250), duration(0, 184_000), duration(0, 7_500_000), duration(10, 0)]).toEqual(['12 ms', '1.3 s', '3 min 4 s', '2 h 5 min', '0 ms']);
});
