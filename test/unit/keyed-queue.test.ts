import { describe, expect, it } from 'vitest';
import { KeyedQueue } from '../../src/util/keyed-queue.js';
import { deferred } from '../support/harness.js';

describe('KeyedQueue', () => {
  it('runs the tasks of one key one at a time, in order, and other keys alongside', async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const gate = deferred();
    const a1 = queue.run('a', async () => {
      log.push('a1 start');
      await gate.promise;
      log.push('a1 end');
      return 1;
    });
    const a2 = queue.run('a', () => (log.push('a2'), 2));
    const b1 = queue.run('b', async () => (log.push('b1'), 3));
    expect(queue.busy('a')).toBe(true);
    await b1;
    expect(log).toEqual(['a1 start', 'b1']);
    gate.resolve();
    expect(await Promise.all([a1, a2])).toEqual([1, 2]);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    await queue.drain();
    expect(queue.busy('a')).toBe(false);
  });

  it('goes on after a task that throws or rejects, and hands each caller its own outcome', async () => {
    const queue = new KeyedQueue();
    const thrown = queue.run('k', () => {
      throw new Error('sync');
    });
    const rejected = queue.run('k', async () => {
      throw new Error('async');
    });
    const fine = queue.run('k', () => 'ok');
    await expect(thrown).rejects.toThrow('sync');
    await expect(rejected).rejects.toThrow('async');
    expect(await fine).toBe('ok');
  });

  it('drain() waits for tasks queued by tasks, and 100,000 synchronous tasks of one key do not overflow the stack', async () => {
    const queue = new KeyedQueue();
    let count = 0;
    for (let i = 0; i < 100_000; i++) void queue.run('k', () => count++);
    void queue.run('j', async () => {
      await Promise.resolve();
      void queue.run('j', () => count++);
    });
    await queue.drain();
    expect(count).toBe(100_001);
    expect(queue.busy('k') || queue.busy('j')).toBe(false);
  });
});
