/**
 * The server module's optional `bento prune` timer (services.bento-server.prune),
 * evaluated with the real nixpkgs lib: off by default; on, a oneshot service
 * running bento prune on the fleet, its arguments quoted for systemd.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderFleet } from '../../src/render/render-fleet.js';
import { evalNixos, writeModule } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';

let dir: string;
let server: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-prune-timer-'));
  writeRendered(path.join(dir, 'generated'), renderFleet({ config: configWith(), systems: [{ name: 'nas', kind: 'flake', key: undefined }] }));
  server = path.join(dir, 'generated', 'server', 'sftp-server.nix');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const module = (name: string, text: string): string => writeModule(dir, name, text);

describe('services.bento-server.prune', () => {
  it('is off by default', () => {
    const units = evalNixos<{ services: Record<string, unknown>; timers: Record<string, unknown> }>([server], 'config.systemd');
    expect(Object.keys(units.services)).not.toContain('bento-prune');
    expect(Object.keys(units.timers)).not.toContain('bento-prune');
  });

  it('runs bento prune on the fleet as a oneshot service on a timer', () => {
    const on = module('on', '{ services.bento-server.prune = { enable = true; package = { type = "derivation"; name = "bento"; outPath = "/pkgs/bento"; }; fleetDir = "/srv/my fleet/100%\\"$HOME"; calendar = "daily"; }; }');
    const units = evalNixos<{ services: Record<string, { serviceConfig: Record<string, string>; script: string }>; timers: Record<string, { timerConfig: Record<string, unknown>; wantedBy: string[] }> }>(
      [server, on],
      'config.systemd',
    );
    // As the rollout.advance timer does: a script, the fleet directory quoted for the shell.
    expect(units.services['bento-prune']?.serviceConfig).toEqual({ Type: 'oneshot' });
    expect(units.services['bento-prune']?.script).toBe(`exec /pkgs/bento/bin/bento --dir '/srv/my fleet/100%"$HOME' prune`);
    expect(units.timers['bento-prune']).toMatchObject({ wantedBy: ['timers.target'], timerConfig: { OnCalendar: 'daily', Persistent: true } });
  });

  it('says what it needs', () => {
    const half = module('half', '{ services.bento-server.prune.enable = true; services.bento-server.prune.fleetDir = "/srv/fleet"; }');
    expect(() => evalNixos([server, half], 'config.systemd.services.bento-prune.script')).toThrow(/services\.bento-server\.prune\.package is not set: set it, or services\.bento-server\.package, to the bento package/);
  });
});
