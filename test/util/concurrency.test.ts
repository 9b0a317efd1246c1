/** mapLimit (src/util/concurrency.ts): at most `limit` workers at once, results in input order. */
import { describe, expect, it } from 'vitest';
import { mapLimit, splitInto } from '../../src/util/concurrency.js';

/** Resolves after the given number of turns of the event loop. */
function turns(n: number): Promise<void> {
  return n <= 0 ? Promise.resolve() : new Promise((resolve) => setImmediate(() => void turns(n - 1).then(resolve)));
}

describe('mapLimit', () => {
  it('never runs more than limit workers at once, and keeps the input order whatever finishes first', async () => {
    let running = 0;
    let most = 0;
    const results = await mapLimit([5, 1, 4, 2, 3, 1, 2], 3, async (delay, index) => {
      running++;
      most = Math.max(most, running);
      await turns(delay);
      running--;
      return `${index}:${delay}`;
    });
    expect(most).toBe(3);
    expect(results).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3', '5:1', '6:2']);
  });

  it('runs every item once with a limit above the count, or below 1', async () => {
    const seen: number[] = [];
    expect(await mapLimit([1, 2], 10, async (item) => (seen.push(item), item * 2))).toEqual([2, 4]);
    expect(await mapLimit([1, 2], 0, async (item) => (seen.push(item), item * 3))).toEqual([3, 6]);
    expect(seen).toEqual([1, 2, 1, 2]);
    expect(await mapLimit([], 3, async () => 1)).toEqual([]);
  });

  it('rejects with the first failure', async () => {
    await expect(mapLimit([1, 2, 3], 2, async (item) => {
      if (item === 2) throw new Error('two failed');
      return item;
    })).rejects.toThrow('two failed');
  });
});

describe('splitInto', () => {
  it('splits into at most `parts` runs of consecutive items, as even as can be, in order', () => {
    const items = Array.from({ length: 10 }, (_, index) => index);
    expect(splitInto(items, 3)).toEqual([[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]);
    expect(splitInto(items, 1)).toEqual([items]);
    expect(splitInto(items, 20)).toEqual(items.map((item) => [item]));
    expect(splitInto(items, 0)).toEqual([items]);
    expect(splitInto([], 4)).toEqual([]);
  });

  it('makes fewer runs when there are not `fewest` items for each', () => {
    const items = Array.from({ length: 40 }, (_, index) => index);
    expect(splitInto(items, 2, 16).map((run) => run.length)).toEqual([20, 20]);
    expect(splitInto(items, 4, 16).map((run) => run.length)).toEqual([20, 20]);
    expect(splitInto(items.slice(0, 31), 2, 16)).toEqual([items.slice(0, 31)]);
    expect(splitInto(items.slice(0, 3), 2, 16)).toEqual([items.slice(0, 3)]);
  });
});
