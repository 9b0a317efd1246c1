/**
 * bento init's example machine, built as it is written (`bento build`; its
 * flake's nixpkgs the offline stand-in of test/helpers/nixpkgs-flake.ts:
 * the real module system, and NixOS's checks that a system can boot). It
 * does not build until the machine's own hardware-configuration.nix is
 * there, nor until its boot loader is set: no made-up root file system or
 * `grub.device = "nodev"` that would build and leave a real machine
 * unbootable. With both, it builds.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';
import { makeNixpkgsFlake, useNixpkgsFlake } from '../helpers/nixpkgs-flake.js';

let work: string;
let fleet: string;
const env = { NIX_CONFIG: 'substituters =', BENTO_DIR: undefined, NAME: undefined };

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-init-eval-'));
  // As root, bento evaluates as an unprivileged user, who must be able to read the stand-in.
  chmodSync(work, 0o755);
  makeNixpkgsFlake(path.join(work, 'nixpkgs'));
  fleet = path.join(work, 'fleet');
  expect(bento(['--dir', fleet, 'init']).status).toBe(0);
  useNixpkgsFlake(path.join(fleet, 'hosts', 'example', 'flake.nix'), path.join(work, 'nixpkgs'));
  const lock = bento(['--dir', fleet, 'flake-update'], { env });
  expect(lock.status, lock.stderr).toBe(0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function build() {
  const run = bento(['--dir', fleet, 'build'], { env });
  return { ...run, output: run.stdout + run.stderr };
}

describe("bento init's example machine, built", () => {
  it("fails without the machine's own hardware-configuration.nix, naming it", () => {
    const run = build();
    expect(run.output).toMatch(/FAILED +example .*hardware-configuration\.nix': No such file or directory/);
    expect(run.status).toBe(1);
  });

  it("with it, fails on NixOS's boot loader check until the machine's boot loader is set; then builds", () => {
    writeFileSync(
      path.join(fleet, 'hosts', 'example', 'hardware-configuration.nix'),
      '{ lib, modulesPath, ... }:\n{\n  imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];\n  fileSystems."/" = { device = "/dev/disk/by-uuid/5b1e-example"; fsType = "ext4"; };\n  fileSystems."/boot" = { device = "/dev/disk/by-uuid/3A1F-9C2B"; fsType = "vfat"; };\n  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";\n}\n',
    );
    const unset = build();
    expect(unset.output).toContain("You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable.");
    expect(unset.status).toBe(1);

    // As the template says: the machine's boot loader, here UEFI's, uncommented.
    const configuration = path.join(fleet, 'hosts', 'example', 'configuration.nix');
    const text = readFileSync(configuration, 'utf8');
    const uefi = text.replace(/^ {2}# {3}(boot\.loader\.(systemd-boot|efi)\.[^\n]*)$/gm, '  $1');
    expect(uefi).not.toBe(text);
    writeFileSync(configuration, uefi);
    const built = build();
    expect(built.stderr, built.output).toContain('build: 1 ok, 0 failed');
    expect(built.stdout).toMatch(/ok +example +[0-9.]+s +\S+-nixos-system-example-24\.05/);
    expect(built.status).toBe(0);
  });
});
