import { describe, expect, it } from 'vitest';
import { storeBasenameProblem } from '../../src/protocol/store-path.js';

const HASH = '996vw3r6ajbfh6xjcq2yn7c0z4v1m8ls';

describe('storeBasenameProblem', () => {
  it('accepts a store path basename and refuses a full path', () => {
    expect(storeBasenameProblem(`${HASH}-nixos-system-x-24.05`)).toBeUndefined();
    expect(storeBasenameProblem(`/nix/store/${HASH}-nixos-system-x`)).toMatch(/hash/);
    expect(storeBasenameProblem(`${HASH}-.hidden`)).toMatch(/starts with/);
  });

  it('refuses a name longer than nix allows (211 characters)', () => {
    expect(storeBasenameProblem(`${HASH}-${'x'.repeat(211)}`)).toBeUndefined();
    expect(storeBasenameProblem(`${HASH}-${'x'.repeat(212)}`)).toMatch(/longer than the 211 characters/);
  });
});
