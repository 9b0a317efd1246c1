/**
 * fleet/host-tree.ts: what is copied from hosts/ is what was checked. A
 * fleet writer who swaps a checked directory for a link while bento copies
 * the tree (a race the hostile round of issue 19 won with inotify, making
 * root publish the signing key) gets a refusal, and nothing is copied from
 * where the link leads. The race is played at its widest: the swap happens
 * between the listing and the copy (or the hash). A FIFO put in a file's
 * place then: host-tree-fifo.test.ts, in a child process.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyHostTree, HashCache, listHostFiles } from '../../src/fleet/host-tree.js';
import { copyFilesWithModes } from '../../src/util/make-dirs.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function fleetWithHost(): { fleet: string; host: string; secrets: string; copy: string } {
  const fleet = mkdtempSync(path.join(os.tmpdir(), 'bento-host-tree-'));
  dirs.push(fleet);
  const host = path.join(fleet, 'hosts', 't');
  mkdirSync(path.join(host, 'sub'), { recursive: true });
  writeFileSync(path.join(host, 'configuration.nix'), '{ }\n');
  writeFileSync(path.join(host, 'sub', 'key'), 'decoy\n');
  // What the link will lead to (readable here, so only the swap is refused, not a mode).
  const secrets = path.join(fleet, '..', `${path.basename(fleet)}-secrets`);
  mkdirSync(secrets);
  dirs.push(secrets);
  writeFileSync(path.join(secrets, 'key'), 'the signing key\n');
  return { fleet, host, secrets, copy: path.join(fleet, 'copy') };
}

describe('copying a host directory', () => {
  it('copies what it checked', () => {
    const { fleet, host, copy } = fleetWithHost();
    const files = copyHostTree(host, copy, { where: 'hosts/t', boundary: fleet });
    expect(files.map((file) => file.relative)).toEqual(['configuration.nix', 'sub/key']);
    expect(readdirSync(path.join(copy, 'sub'))).toEqual(['key']);
  });

  it('refuses a file whose directory became a link after the check, and copies nothing from where it leads', () => {
    const { fleet, host, secrets, copy } = fleetWithHost();
    const files = listHostFiles(host, { where: 'hosts/t', boundary: fleet });
    mkdirSync(copy);
    renameSync(path.join(host, 'sub'), path.join(host, 'sub.old'));
    symlinkSync(secrets, path.join(host, 'sub'));
    expect(() => copyFilesWithModes(copy, files)).toThrow('hosts/t/sub/key changed while bento copied it (it is another file than the one checked');
    expect(readdirSync(path.join(copy, 'sub'))).toEqual([]);
  });

  it('refuses a file made unreadable after the check', () => {
    const { fleet, host, copy } = fleetWithHost();
    const files = listHostFiles(host, { where: 'hosts/t', boundary: fleet });
    mkdirSync(copy);
    chmodSync(path.join(host, 'sub', 'key'), 0o600);
    expect(() => copyFilesWithModes(copy, files)).toThrow('hosts/t/sub/key changed while bento copied it (it is no longer readable by everyone)');
  });
});

describe('hashing a host directory', () => {
  it('hashes what it checked, and refuses a file whose directory became a link after the check, naming it', () => {
    const { fleet, host, secrets } = fleetWithHost();
    const files = listHostFiles(host, { where: 'hosts/t', boundary: fleet });
    const key = files.find((file) => file.relative === 'sub/key');
    expect(new HashCache().hash(key?.source as string, key?.checked)).toMatch(/^[0-9a-f]{64}$/);
    renameSync(path.join(host, 'sub'), path.join(host, 'sub.old'));
    symlinkSync(secrets, path.join(host, 'sub'));
    expect(() => new HashCache().hash(key?.source as string, key?.checked)).toThrow(
      'hosts/t/sub/key changed while bento read it (it is another file than the one checked: a directory on its path was replaced, by a link maybe): nothing of it is used',
    );
  });
});
