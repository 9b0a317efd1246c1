/**
 * nixpkgs pastes services.openssh.extraConfig into an unquoted heredoc
 * (sshconf in nixos/modules/services/networking/ssh/sshd.nix:
 * `cat ${configFile} - >$out <<EOL`, the text, `EOL`), run by the build's
 * shell: a `$`, a backtick or a backslash in the server module's Match block
 * would be expanded (a backtick runs a command on the build machine), a line
 * EOL would end it early. The module's text, rendered from a fleet with
 * hostile values, must come out of a real shell's heredoc byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { checkHeredocText, renderFleet } from '../../src/render/render-fleet.js';
import { testKey } from '../helpers/fleet.js';
import { evalNixos } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';

let dir: string;
let marker: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-sshd-heredoc-'));
  marker = path.join(dir, 'ran');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What sshd.nix's builder writes for this extraConfig, with `shell` (the Nix '' string adds the newline before EOL). */
function throughHeredoc(shell: string, text: string): string {
  const out = path.join(dir, `out-${path.basename(shell)}`);
  const script = path.join(dir, 'builder.sh');
  writeFileSync(script, `cat - >"$out" <<EOL\n${text}\nEOL\n`);
  const run = spawnSync(shell, [script], { encoding: 'utf8', env: { PATH: process.env.PATH, out, HOME: '/homeless' } });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return readFileSync(out, 'utf8');
}

describe("the server module's sshd text in nixpkgs' heredoc", () => {
  it('comes out byte for byte, whatever the fleet holds, and runs nothing', () => {
    const chrootDir = `/srv/b$HOME\`touch ${marker}\`$(touch ${marker})\\$x\\\\ "'EOL`;
    const config = configWith({ chrootDir, remoteIp: 'a$(touch x).example.org' });
    const systems = [{ name: 'nas', kind: 'flake' as const, key: parsePublicKey(`${testKey('nas')}`) }];
    writeRendered(path.join(dir, 'generated'), renderFleet({ config, systems }));
    const text = evalNixos<string>([path.join(dir, 'generated', 'server', 'sftp-server.nix')], 'config.services.openssh.extraConfig');
    expect(text).toContain('Match Group sftp_users\n');
    for (const shell of ['/bin/sh', '/bin/bash']) {
      expect(throughHeredoc(shell, text)).toBe(`${text}\n`);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('a template that would put a $, a backtick, a backslash or a line EOL there is refused when rendering', () => {
    expect(checkHeredocText('Match all\n# fine: no expansion here\n', 'x')).toBe('Match all\n# fine: no expansion here\n');
    for (const bad of ['# see `id`\n', '# $HOME\n', '# a\\\n', 'EOL\n']) {
      expect(() => checkHeredocText(bad, 'server/sshd_config')).toThrow(/^server\/sshd_config: the text for services\.openssh\.extraConfig holds/);
    }
  });
});
