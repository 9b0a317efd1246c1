/**
 * `bento generate` as root takes the flakes' system names from deploy's
 * cache of them (chroot/flake-names-cache.ts) instead of starting Nix, and
 * renders the same bytes; a flake whose content changed is evaluated again.
 * Root, real Nix.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flakeNamesCachePath } from '../../src/chroot/flake-names-cache.js';
import { bento } from '../helpers/cli.js';
import { makeFleet } from '../helpers/fleet.js';
import { isRoot } from '../helpers/shell.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';

const suite = useTestServer();
const { n } = suite;

/** Every file under `dir` and its content. */
function tree(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) found[path.relative(dir, path.join(entry.parentPath, entry.name))] = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return found;
}

const NIX_RUN = /debug: \$ .*\bnix\b/;

describe.skipIf(!isRoot)('bento generate as root', () => {
  it('evaluates the flakes once, then takes their names from the cache; a flake edited is evaluated again', () => {
    const chrootDir = suite.server.chrootDir;
    const fleet = makeFleet({ config: `CHROOT_DIR=${chrootDir}\nREMOTE_IP=127.0.0.1\n`, hosts: { pair: { flake: [n('a'), n('b')] }, solo: { flake: [n('c')] }, [n('r')]: { nonFlake: true } } });
    suite.later(fleet.cleanup);
    const env = { BENTO_DIR: fleet.root, ...NIX_ENV, BENTO_DEBUG: '1' };
    const generated = path.join(fleet.root, 'generated');

    const first = bento(['generate'], { env });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(NIX_RUN);
    expect(readFileSync(flakeNamesCachePath(chrootDir), 'utf8')).toContain(n('c'));
    const rendered = tree(generated);
    expect(Object.keys(rendered)).toContain(path.join('systems', n('b'), 'update.sh'));

    rmSync(generated, { recursive: true });
    const again = bento(['generate'], { env });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(NIX_RUN);
    expect(tree(generated)).toEqual(rendered);

    // Another flake.nix for solo (the same system): its names are asked of Nix again, the others' are not.
    const flake = path.join(fleet.root, 'hosts', 'solo', 'flake.nix');
    writeFileSync(flake, `${readFileSync(flake, 'utf8')}# edited\n`);
    const edited = bento(['generate'], { env });
    expect(edited.status, edited.stderr).toBe(0);
    expect(edited.stderr).toMatch(NIX_RUN);
    expect(tree(generated)).toEqual(rendered);
  });
});
