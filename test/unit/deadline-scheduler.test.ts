import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { DeadlineScheduler } from '../../src/runtime/deadline-scheduler.js';

const T0 = 1_000_000;

function setup(onFire?: (key: string, scheduler: DeadlineScheduler, clock: ManualClock) => void) {
  const clock = new ManualClock(T0);
  const fired: Array<{ key: string; now: number }> = [];
  const scheduler: DeadlineScheduler = new DeadlineScheduler(clock, (key) => {
    fired.push({ key, now: clock.now() });
    onFire?.(key, scheduler, clock);
  });
  return { clock, fired, scheduler };
}

/** A deterministic PRNG (mulberry32), so that a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('DeadlineScheduler', () => {
  it('fires keys in due order, each at its time, on one clock timer', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.arm('c', T0 + 300);
    scheduler.arm('a', T0 + 100);
    scheduler.arm('b', T0 + 200);
    expect(scheduler.size).toBe(3);
    expect(scheduler.nextAt).toBe(T0 + 100);
    expect(clock.pending).toBe(1);
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([{ key: 'a', now: T0 + 100 }]);
    clock.advance(1_000);
    expect(fired.map((f) => [f.key, f.now])).toEqual([
      ['a', T0 + 100],
      ['b', T0 + 200],
      ['c', T0 + 300],
    ]);
    expect(scheduler.size).toBe(0);
    expect(scheduler.nextAt).toBeNull();
    expect(clock.pending).toBe(0);
  });

  it('fires everything due in one clock callback, in due order', () => {
    const { clock, fired, scheduler } = setup();
    // All overdue (as after a restart): one timer, and its callback finds every one due.
    for (const [key, dt] of [['x', 10], ['y', 50], ['z', 30], ['w', 40]] as const) scheduler.arm(key, T0 - dt);
    scheduler.arm('later', T0 + 1);
    expect(clock.pending).toBe(1);
    clock.advance(0);
    expect(fired).toEqual(['y', 'w', 'z', 'x'].map((key) => ({ key, now: T0 })));
    expect(scheduler.size).toBe(1);
  });

  it('replaces a key’s entry when armed again, earlier or later', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.arm('a', T0 + 100);
    scheduler.arm('b', T0 + 200);
    scheduler.arm('a', T0 + 300); // later: b is now first
    expect(scheduler.size).toBe(2);
    expect(scheduler.nextAt).toBe(T0 + 200);
    scheduler.arm('b', T0 + 50); // earlier
    expect(scheduler.nextAt).toBe(T0 + 50);
    scheduler.arm('b', T0 + 50); // the same: nothing changes
    expect(clock.pending).toBe(1);
    clock.advance(1_000);
    expect(fired.map((f) => [f.key, f.now])).toEqual([
      ['b', T0 + 50],
      ['a', T0 + 300],
    ]);
  });

  it('disarms with null, and clear() disarms every key and its timer', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.arm('a', T0 + 100);
    scheduler.arm('b', T0 + 200);
    scheduler.arm('a', null);
    scheduler.arm('never-armed', null);
    expect(scheduler.size).toBe(1);
    expect(scheduler.nextAt).toBe(T0 + 200);
    clock.advance(500);
    expect(fired.map((f) => f.key)).toEqual(['b']);
    scheduler.arm('c', T0 + 900);
    scheduler.arm('d', T0 + 950);
    scheduler.clear();
    expect(scheduler.size).toBe(0);
    expect(clock.pending).toBe(0);
    clock.advance(1_000);
    expect(fired.map((f) => f.key)).toEqual(['b']);
    // Usable after clear().
    scheduler.arm('e', clock.now() + 1);
    clock.advance(1);
    expect(fired.map((f) => f.key)).toEqual(['b', 'e']);
  });

  it('fires a past deadline on the next timer, and caps a far one at 2**31-1 ms', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.arm('past', T0 - 5_000);
    expect(fired).toEqual([]);
    clock.advance(0);
    expect(fired).toEqual([{ key: 'past', now: T0 }]);
    const far = T0 + 2 ** 31 + 10_000;
    scheduler.arm('far', far);
    clock.advance(2 ** 31 - 1);
    expect(fired).toHaveLength(1);
    expect(clock.pending).toBe(1); // re-checked, re-armed
    clock.advance(far - clock.now() - 1);
    expect(fired).toHaveLength(1);
    clock.advance(1);
    expect(fired.at(-1)).toEqual({ key: 'far', now: far });
  });

  it('refuses a due time that is not a finite number', () => {
    const { scheduler } = setup();
    expect(() => scheduler.arm('a', Number.NaN)).toThrow(RangeError);
    expect(() => scheduler.arm('a', Infinity)).toThrow(/'a'.*finite/);
    expect(scheduler.size).toBe(0);
  });

  it('lets fire callbacks re-arm and disarm: a disarmed key does not fire, a re-armed one fires at its new time', () => {
    let once = false;
    const { clock, fired, scheduler } = setup((key, s, c) => {
      if (key === 'a' && !once) {
        once = true;
        s.arm('b', null); // due in this same callback: must not fire
        s.arm('a', c.now() + 100); // itself, later
        s.arm('c', c.now() + 10); // another, later than planned
      }
    });
    // All four are due when the timer fires (at T0), in the order a, b, c, d.
    scheduler.arm('a', T0 - 4);
    scheduler.arm('b', T0 - 3);
    scheduler.arm('c', T0 - 2);
    scheduler.arm('d', T0 - 1);
    clock.advance(0);
    expect(fired).toEqual([
      { key: 'a', now: T0 },
      { key: 'd', now: T0 },
    ]);
    expect(scheduler.size).toBe(2);
    expect(scheduler.nextAt).toBe(T0 + 10);
    clock.advance(200);
    expect(fired.slice(2)).toEqual([
      { key: 'c', now: T0 + 10 },
      { key: 'a', now: T0 + 100 },
    ]);
    expect(scheduler.size).toBe(0);
  });

  it('fires a key that a callback arms at or before now on the next clock callback, so a self-re-arming key cannot loop', () => {
    let rearms = 0;
    const { clock, fired, scheduler } = setup((key, s, c) => {
      if (key === 'loop' && rearms < 3) {
        rearms++;
        s.arm('loop', c.now());
      }
      if (key === 'x') s.arm('y', c.now() - 1);
    });
    scheduler.arm('loop', T0);
    scheduler.arm('x', T0);
    expect(scheduler.size).toBe(2);
    clock.advance(0);
    // Each fire of 'loop' re-arms it at now: it fires again on the following callback, never twice in one.
    expect(fired.filter((f) => f.key === 'loop')).toHaveLength(4);
    expect(fired.map((f) => f.key)).toContain('y');
    expect(scheduler.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('keeps its timer after a fire callback throws, and fires the rest', () => {
    const { clock, fired, scheduler } = setup((key) => {
      if (key === 'bad') throw new Error('boom');
    });
    scheduler.arm('bad', T0 + 1);
    scheduler.arm('good', T0 + 2);
    expect(() => clock.advance(5)).toThrow('boom');
    expect(clock.pending).toBe(1); // the ManualClock stopped at the throw; the scheduler re-armed
    clock.advance(5);
    expect(fired.map((f) => f.key)).toEqual(['bad', 'good']);
    expect(scheduler.size).toBe(0);
  });

  it('matches a sorted-array model over 20,000 random arms, re-arms, disarms and clock moves', () => {
    for (const seed of [1, 2, 3]) {
      const rand = random(seed);
      const model = new Map<string, number>();
      const { clock, fired, scheduler } = setup();
      let checked = 0;
      for (let step = 0; step < 20_000; step++) {
        const r = rand();
        const key = `k${Math.floor(rand() * 400)}`;
        if (r < 0.55) {
          const at = clock.now() + Math.floor(rand() * 2_000) - 50; // some already due
          scheduler.arm(key, at);
          model.set(key, at);
        } else if (r < 0.75) {
          scheduler.arm(key, null);
          model.delete(key);
        } else if (r < 0.999) {
          const target = clock.now() + Math.floor(rand() * 300);
          // The model fires what is due by the target time, in due order (ties in any order).
          const due = [...model].filter(([, at]) => at <= target).sort((a, b) => a[1] - b[1]);
          const before = fired.length;
          clock.advance(target - clock.now());
          const got = fired.slice(before);
          expect(got.map((f) => f.key).sort()).toEqual(due.map(([k]) => k).sort());
          // Due order: each fires at or after its due time, and never before an earlier one.
          const dueAt = new Map(due);
          for (let i = 0; i < got.length; i++) {
            expect(got[i]!.now).toBeGreaterThanOrEqual(dueAt.get(got[i]!.key)!);
            if (i > 0) expect(dueAt.get(got[i]!.key)!).toBeGreaterThanOrEqual(dueAt.get(got[i - 1]!.key)!);
          }
          for (const [k] of due) model.delete(k);
          checked += got.length;
        } else {
          scheduler.clear();
          model.clear();
        }
        expect(scheduler.size).toBe(model.size);
        const next = model.size ? Math.min(...model.values()) : null;
        expect(scheduler.nextAt).toBe(next);
        expect(clock.pending).toBe(model.size ? 1 : 0);
      }
      expect(checked).toBeGreaterThan(1_000); // the run really fired things
    }
  });
});
