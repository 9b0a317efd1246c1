/** How `bento diff` compares closures (src/nix/diff-closures.ts): the choice of tool and the parsing of Nix's answer, without Nix. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseClosureDiffTool, findExecutable, parsePathInfoValidity } from '../../src/nix/diff-closures.js';

describe('parsePathInfoValidity', () => {
  it('reads the validity Nix 2.8 reports (recorded output)', () => {
    const recorded =
      '[{"path":"/nix/store/00000000000000000000000000000000-nixos-system-x-1","valid":false},{"path":"/nix/store/09wgcnvxdl541kl0xr764bvwmwn2ik54-source","narHash":"sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=","narSize":336,"references":[],"registrationTime":1795657852}]';
    expect([...parsePathInfoValidity(recorded)]).toEqual(['/nix/store/09wgcnvxdl541kl0xr764bvwmwn2ik54-source']);
    expect(() => parsePathInfoValidity('error')).toThrow(/unexpected output/);
  });
});

describe('choosing the diff tool', () => {
  it('prefers an executable nvd on PATH, else nix', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-nvd-'));
    try {
      expect(chooseClosureDiffTool(dir)).toBe('nix');
      writeFileSync(path.join(dir, 'nvd'), '#!/bin/sh\n');
      chmodSync(path.join(dir, 'nvd'), 0o644);
      expect(findExecutable('nvd', `/nonexistent${path.delimiter}${dir}`)).toBeUndefined();
      chmodSync(path.join(dir, 'nvd'), 0o755);
      expect(findExecutable('nvd', `/nonexistent${path.delimiter}${dir}`)).toBe(path.join(dir, 'nvd'));
      expect(chooseClosureDiffTool(dir)).toBe('nvd');
      expect(chooseClosureDiffTool(undefined)).toBe('nix');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
