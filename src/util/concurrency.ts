/** Runs `worker` over `items` with at most `limit` at a time; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, worker: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index] as T, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * `items` in at most `parts` runs of consecutive items, as even as can be,
 * none shorter than `fewest` (so fewer runs when there are not enough
 * items): work for processes started side by side, each of which costs a
 * start of its own.
 */
export function splitInto<T>(items: readonly T[], parts: number, fewest = 1): T[][] {
  const count = Math.max(1, Math.min(Math.floor(parts), Math.floor(items.length / Math.max(1, fewest))));
  const runs: T[][] = [];
  for (let run = 0; run < count; run++) {
    const start = Math.round((run * items.length) / count);
    const end = Math.round(((run + 1) * items.length) / count);
    if (end > start) runs.push(items.slice(start, end));
  }
  return runs;
}
