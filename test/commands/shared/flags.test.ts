import { describe, expect, it } from 'vitest';

describe('the flags several commands take', () => {
  it('parses NAME like the original: spaces or commas', async () => {
    const { parseNameList } = await import('../../../src/commands/shared/flags.js');
    expect(parseNameList(' a  b,c ')).toEqual(['a', 'b', 'c']);
    expect(parseNameList(undefined)).toEqual([]);
  });
});
