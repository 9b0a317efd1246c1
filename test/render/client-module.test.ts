/**
 * The client module's health gate (utils/bento.nix with the generated
 * bento-module.nix and bento-units.nix next to utils/), evaluated with the real module system.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { evalNixos } from '../helpers/nixos.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-client-module-'));
  mkdirSync(path.join(dir, 'utils'));
  copyFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), path.join(dir, 'utils', 'bento.nix'));
  copyFileSync(path.join(PACKAGE_ROOT, 'generated', 'client', 'bento-units.nix'), path.join(dir, 'bento-units.nix'));
  copyFileSync(path.join(PACKAGE_ROOT, 'generated', 'client', 'bento-module.nix'), path.join(dir, 'bento-module.nix'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function machine(text: string): string[] {
  const file = path.join(dir, `machine-${Math.random().toString(36).slice(2)}.nix`);
  writeFileSync(file, text);
  return [path.join(dir, 'utils', 'bento.nix'), file];
}

describe('services.bento.healthCheck', () => {
  it('puts the check and its timing into the system, under etc/bento, where the client reads them after a switch', () => {
    const modules = machine('{ services.bento.healthCheck = { command = "test -e /run/app.ok"; timeout = 7; gracePeriod = 45; }; }');
    const etc = evalNixos<Record<string, { text: string }>>(modules, 'config.environment.etc');
    expect(etc['bento/health-check']?.text).toBe('test -e /run/app.ok');
    expect(etc['bento/health.conf']?.text).toBe('timeout=7\ngrace=45\n');
  });

  it('without a command: no check file, and the defaults for the unit check', () => {
    const etc = evalNixos<Record<string, { text: string }>>(machine('{ }'), 'config.environment.etc');
    expect(etc['bento/health-check']).toBeUndefined();
    expect(etc['bento/health.conf']?.text).toBe('timeout=30\ngrace=120\n');
  });

  it('refuses a timeout that is not a positive whole number', () => {
    expect(() => evalNixos(machine('{ services.bento.healthCheck.timeout = 0; }'), 'config.environment.etc')).toThrow(/positive integer|is not of type/);
  });
});

describe('boot counting (a bad boot undoes itself)', () => {
  /**
   * The option as nixpkgs declares it since PR #447173 (nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix): a
   * stand-in of its declaration. The stored nixpkgs predates it; its shape (`enable`, `tries`, 3 by default) is the one
   * systemd-boot-builder.py's @bootCounting@ and @bootCountingTries@ are filled from, and the one public configurations set.
   */
  const DECLARES = `{ lib, ... }: { options.boot.loader.systemd-boot.bootCounting = {
    enable = lib.mkOption { type = lib.types.bool; default = false; };
    tries = lib.mkOption { type = lib.types.ints.positive; default = 3; };
  }; }`;
  const services = (modules: string[]) => evalNixos<Record<string, { requiredBy?: string[]; before?: string[]; after?: string[]; script?: string }>>(modules, 'config.systemd.services');

  it('on: a health unit ordered before boot-complete.target and required by it, checking failed units and the health command, never the server', () => {
    const modules = [...machine('{ services.bento.healthCheck = { command = "test -e /run/app.ok"; timeout = 7; gracePeriod = 45; }; boot.loader.systemd-boot.bootCounting = { enable = true; tries = 2; }; }'), writeDeclaration()];
    const unit = services(modules)['bento-boot-health'];
    expect(unit?.requiredBy).toEqual(['boot-complete.target']);
    expect(unit?.before).toEqual(['boot-complete.target']);
    expect(unit?.after).toContain('multi-user.target');
    expect(unit?.script).toContain('systemctl --failed');
    expect(unit?.script).toContain('timeout 7 /bin/sh /etc/bento/health-check');
    expect(unit?.script).toContain('+ 45 ))');
    expect(unit?.script).not.toMatch(/sftp|ssh |REMOTE/);
  });

  it('off, or an older nixpkgs without the option: nothing changes', () => {
    const without = services(machine('{ }'));
    const declaredOff = services([...machine('{ }'), writeDeclaration()]);
    expect(without['bento-boot-health']).toBeUndefined();
    expect(declaredOff).toEqual(without);
  });

  function writeDeclaration(): string {
    const file = path.join(dir, `declares-${Math.random().toString(36).slice(2)}.nix`);
    writeFileSync(file, DECLARES);
    return file;
  }
});
