/**
 * The parsers of templates/client/lib/switch.sh and disk-space.sh on their
 * own (shell tier: sourced, no root): the generation number read from the
 * system profile's link, and the free space read from df.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

describe('generation_of', () => {
  it('reads N from system-N-link, and nothing from any other name', () => {
    const names = ['system-42-link', '/nix/var/nix/profiles/system-7-link', 'system-link', 'system--link', 'system-4a-link', '/nix/store/abc-nixos-system'];
    const script = names.map((name) => `printf '[%s]\\n' "$(generation_of ${shellQuote(name)})"`).join('\n');
    expect(runSourced(['switch'], script).stdout).toBe('[42]\n[7]\n[]\n[]\n[]\n[]\n');
  });
});

describe('free_kib and disk_full', () => {
  /** free_kib and disk_full with df a stand-in printing `output` (exiting `status`). */
  function space(output: string, status = 0): string {
    const bin = tempDir('bento-df-', cleanups);
    mkdirSync(path.join(bin, 'bin'));
    writeFileSync(path.join(bin, 'bin', 'df'), `#!/bin/sh\nprintf '%s' ${shellQuote(output)}\nexit ${status}\n`, { mode: 0o755 });
    const script = 'BENTO_DIR=/var/bento; printf "[%s] " "$(free_kib)"; if disk_full; then echo full; else echo room; fi';
    return runSourced(['disk-space'], script, { PATH: `${path.join(bin, 'bin')}:/usr/bin:/bin` }).stdout.trim();
  }

  const HEADER = 'Filesystem     1024-blocks    Used Available Capacity Mounted on\n';

  it('reads the available KiB of df -Pk; under 1 MiB is full', () => {
    expect(space(`${HEADER}/dev/sda1 100000 99000 1000 99% /\n`)).toBe('[1000] full');
    expect(space(`${HEADER}/dev/sda1 100000 50000 50000 50% /\n`)).toBe('[50000] room');
  });

  it('says nothing, and not full, when df cannot tell', () => {
    expect(space('', 1)).toBe('[] room');
    expect(space(`${HEADER}/dev/sda1 100000 99000 -12 99% /\n`)).toBe('[] room');
  });
});
