/** The client refuses to start without its tools, before touching anything. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderSystemFiles } from '../../src/render/render-fleet.js';
import { configWith, withClientLibrary, writeRendered } from '../helpers/render.js';
import { isRoot, runClientScript, STUBS_DIR } from '../helpers/shell.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-tools-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function which(tool: string): string {
  for (const prefix of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    try {
      if (readdirSync(prefix).includes(tool)) return path.join(prefix, tool);
    } catch {
      // not there
    }
  }
  throw new Error(`${tool} not found`);
}

describe.skipIf(!isRoot)('client tool check', () => {
  it('a flake machine without git: a clear message, exit 1, nothing created', () => {
    writeRendered(dir, withClientLibrary(renderSystemFiles(configWith(), { name: 'laptop', kind: 'flake' })));
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['unshare', 'sh', 'mount', 'flock', 'sha256sum', 'gzip']) symlinkSync(which(tool), path.join(bin, tool));
    for (const stub of ['sftp', 'ssh', 'nixos-rebuild']) symlinkSync(path.join(STUBS_DIR, stub), path.join(bin, stub));
    const varBento = path.join(dir, 'var-bento');
    mkdirSync(varBento);

    // Run by hand on a fresh machine: its own PATH (only `bin`), not the unit's.
    const run = runClientScript(path.join(dir, 'systems/laptop/update.sh'), varBento, { env: { PATH: bin } });
    expect(run.stderr).toContain("bento: missing: git; nothing was changed. On a fresh NixOS machine run me as: nix-shell -p git --run 'sh ");
    expect(run.status).toBe(1);
    expect(readdirSync(varBento)).toEqual([]);
  });
});
