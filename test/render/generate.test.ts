/** The generate stage: the fleet rendered into generated/, leaving out the server files while part of the fleet is broken. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseFleet } from '../../src/fleet/fleet.js';
import { defaultOutputDir, generateOutput, renderGeneratedFiles } from '../../src/render/generate.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';

let fleetDir: TestFleet | undefined;
afterEach(() => {
  fleetDir?.cleanup();
  fleetDir = undefined;
});

describe('generateOutput and renderGeneratedFiles', () => {
  it('write generated/ for the fleet, then prune what is no longer generated', async () => {
    fleetDir = makeFleet({ hosts: { router: { nonFlake: true } } });
    const outputDir = defaultOutputDir(fleetDir.root);
    expect(outputDir).toBe(path.join(fleetDir.root, 'generated'));
    const first = await generateOutput({ fleetDir: fleetDir.root });
    await releaseFleet(first.fleet);
    expect(first.complete).toBe(true);
    expect(first.outputDir).toBe(outputDir);
    expect(existsSync(path.join(outputDir, 'systems', 'router', 'update.sh'))).toBe(true);
    expect(existsSync(path.join(outputDir, 'server', 'sshd_config'))).toBe(true);
    writeFileSync(path.join(outputDir, 'systems', 'gone.sh'), 'stale\n');
    const again = await generateOutput({ fleetDir: fleetDir.root });
    await releaseFleet(again.fleet);
    expect(existsSync(path.join(outputDir, 'systems', 'gone.sh'))).toBe(false);
    expect(readFileSync(path.join(outputDir, 'systems', 'router', 'update.sh'), 'utf8')).toContain('router');
  });

  it('leave out the server files while a host directory is broken, so no machine loses its user', async () => {
    fleetDir = makeFleet({ hosts: { router: { nonFlake: true } } });
    const { fleet } = await generateOutput({ fleetDir: fleetDir.root, outputDir: path.join(fleetDir.root, 'out') });
    await releaseFleet(fleet);
    const whole = renderGeneratedFiles(fleet).map((file) => file.path);
    expect(whole.some((file) => file.startsWith('server/'))).toBe(true);
    const broken = renderGeneratedFiles({ ...fleet, brokenHosts: [{ hostDirName: 'laptops', place: 'hosts/laptops/flake.nix', message: 'syntax error' }] }).map((file) => file.path);
    expect(broken).toEqual(whole.filter((file) => !file.startsWith('server/')));
  });
});
