/** The pattern of a system name: what useradd accepts everywhere (docs/protocol.md). */
import { describe, expect, it } from 'vitest';
import { SYSTEM_NAME } from '../../src/protocol/system-name.js';

describe('SYSTEM_NAME', () => {
  it.each(['a', '_a', 'web-1', 'db_2', 'a'.repeat(32)])('accepts %s', (name) => {
    expect(SYSTEM_NAME.test(name)).toBe(true);
  });

  it.each(['', 'A', 'Laptop', '1web', '-a', 'a.b', 'a/b', '..', 'a b', 'a\n', 'a'.repeat(33)])('refuses %j', (name) => {
    expect(SYSTEM_NAME.test(name)).toBe(false);
  });
});
