/** A new fleet: the files init writes, a config.sh that parses, and an existing fleet never overwritten. */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { UserError } from '../../src/errors.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { INIT_FILES, initFleet, olderClientEntryWarning } from '../../src/render/init-fleet.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'bento-init-fleet-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('initFleet', () => {
  it('writes every file it names, the example host linked to utils/, and a config.sh that parses', async () => {
    const fleetDir = path.join(root, 'new');
    expect(await initFleet({ fleetDir })).toEqual(INIT_FILES);
    for (const file of INIT_FILES) expect(existsSync(path.join(fleetDir, file)), file).toBe(true);
    expect(lstatSync(path.join(fleetDir, 'hosts/example/utils')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(fleetDir, 'hosts/example/utils'))).toBe('../../utils');
    expect(readFileSync(path.join(fleetDir, 'utils/bento.nix'), 'utf8')).toBe(readFileSync(path.join(PACKAGE_ROOT, 'utils/bento.nix'), 'utf8'));
    const { config, warnings } = parseConfig(readFileSync(path.join(fleetDir, 'config.sh'), 'utf8'));
    expect(warnings).toEqual([]);
    expect(config.chrootDir).toBeTruthy();
  });

  it("has the example machine import its own hardware configuration, with no stand-in for its file systems or boot loader", async () => {
    const fleetDir = path.join(root, 'hardware');
    await initFleet({ fleetDir });
    const configuration = readFileSync(path.join(fleetDir, 'hosts/example/configuration.nix'), 'utf8');
    const code = configuration.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
    expect(code).toMatch(/imports = \[\s*(#.*\s*)*\.\/hardware-configuration\.nix\s*\];/);
    // A made-up root file system or `nodev` would build, and leave a real machine unbootable.
    expect(code).not.toContain('fileSystems');
    expect(code).not.toContain('boot.loader');
    expect(configuration).toContain("machine's /etc/nixos/hardware-configuration.nix");
    // init does not write one: it is the machine's own.
    expect(existsSync(path.join(fleetDir, 'hosts/example/hardware-configuration.nix'))).toBe(false);
  });

  it.each(['config.sh', 'hosts', 'keys', 'utils', 'generated'])('refuses a directory that holds %s, and writes nothing', async (marker) => {
    const fleetDir = path.join(root, `has-${marker}`);
    mkdirSync(fleetDir);
    if (marker === 'config.sh') writeFileSync(path.join(fleetDir, marker), 'CHROOT_DIR=/srv/bento\n');
    else mkdirSync(path.join(fleetDir, marker));
    const failure = await initFleet({ fleetDir }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as UserError).message).toBe(`${fleetDir} already holds a fleet (${marker} exist); init never overwrites one`);
    expect(existsSync(path.join(fleetDir, marker === 'config.sh' ? 'hosts' : 'config.sh'))).toBe(false);
  });

  it('makes the directory when it does not exist yet', async () => {
    const fleetDir = path.join(root, 'a', 'b');
    await initFleet({ fleetDir });
    expect(existsSync(path.join(fleetDir, 'config.sh'))).toBe(true);
  });
});

describe('olderClientEntryWarning', () => {
  it("warns of a utils/bento.nix that reads the units from bento-units.nix (before the generic module), and of no other", async () => {
    const fleetDir = path.join(root, 'older');
    mkdirSync(path.join(fleetDir, 'utils'), { recursive: true });
    expect(olderClientEntryWarning(fleetDir)).toBeUndefined();
    writeFileSync(path.join(fleetDir, 'utils', 'bento.nix'), readFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), 'utf8'));
    expect(olderClientEntryWarning(fleetDir)).toBeUndefined();
    // As the utils/bento.nix of bento 0.1.0 ended.
    writeFileSync(path.join(fleetDir, 'utils', 'bento.nix'), '{ config, lib, pkgs, ... }: {\n  config = lib.mkIf cfg.enable (generated.units { inherit cfg config lib pkgs; });\n}\n');
    expect(olderClientEntryWarning(fleetDir)).toMatch(/^utils\/bento\.nix is from an older bento, which read the units from bento-units\.nix: copy \/.*\/utils\/bento\.nix over it/);
  });
});
