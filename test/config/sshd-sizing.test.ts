/**
 * MaxStartups and LoginGraceTime sized for the fleet (config/sshd-sizing.ts),
 * and what the real sshd makes of the generated configurations (`sshd -T`):
 * the Debian snippet included at the top of Debian's own sshd_config, and
 * the NixOS module's sshd_config as nixpkgs writes it, with another module's
 * Match block in it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { renderFleet, type RenderedFile } from '../../src/render/render-fleet.js';
import { effectiveMaxStartups, LOGIN_GRACE_TIME_RULE, MAX_STARTUPS_RULE, OPENSSH_LOGIN_GRACE_TIME, sizeSshd } from '../../src/config/sshd-sizing.js';
import { configKeysHelp } from '../../src/config/describe-keys.js';
import { testKey } from '../helpers/fleet.js';
import { evalNixos } from '../helpers/nixos.js';
import { configWith, writeRendered } from '../helpers/render.js';
import { isRoot } from '../helpers/shell.js';

const SSHD = '/usr/sbin/sshd';
const DEBIAN_SSHD_CONFIG = '/etc/ssh/sshd_config';
const noOverride = { sshdMaxStartups: null, sshdLoginGraceTime: null };

function parts(maxStartups: string): { begin: number; rate: number; full: number } {
  const [begin, rate, full] = maxStartups.split(':').map(Number);
  return { begin: begin as number, rate: rate as number, full: full as number };
}

describe('sizeSshd', () => {
  it.each([0, 1, 4, 20, 150, 200, 1000, 10_000])('%i systems: every machine can be logging in at once, with headroom, and sshd still drops a flood', (count) => {
    const { begin, rate, full } = parts(sizeSshd(count, noOverride).maxStartups);
    // Never below OpenSSH's own 10:30:100.
    expect(begin).toBeGreaterThanOrEqual(10);
    expect(full).toBeGreaterThanOrEqual(100);
    // The whole fleet and at least 10 more (administrators, retries) before the first drop.
    expect(begin).toBeGreaterThanOrEqual(count + 10);
    expect(begin).toBeGreaterThanOrEqual(Math.ceil(count * 1.5));
    expect(rate).toBe(30);
    expect(full).toBe(Math.max(100, 2 * begin));
  });

  it('sizes a fleet of 200 as the load test needs (150 at once need more than the default: see bench/poll-load.sh)', () => {
    expect(sizeSshd(200, noOverride).maxStartups).toBe('300:30:600');
    expect(sizeSshd(4, noOverride).maxStartups).toBe('14:30:100');
  });

  it('gives logins more time as the fleet grows, never more than OpenSSH’s 120 s, never less than 30 s', () => {
    const graces = [0, 10, 200, 1000, 2000, 100_000].map((count) => sizeSshd(count, noOverride).loginGraceTime);
    expect(graces[0]).toBe(30);
    for (let i = 1; i < graces.length; i++) expect(graces[i]).toBeGreaterThanOrEqual(graces[i - 1] as number);
    expect(graces.at(-1)).toBe(OPENSSH_LOGIN_GRACE_TIME);
    expect(sizeSshd(200, noOverride).loginGraceTime).toBe(40);
  });

  it('states its rules once: --help and docs/config.md say what it computes', () => {
    expect(MAX_STARTUPS_RULE).toBe("sized for the fleet's N systems: B:30:2B with B = N + max(10, N/2), at least 10:30:100 (200 systems: 300:30:600)");
    expect(LOGIN_GRACE_TIME_RULE).toBe("sized for the fleet's N systems: 30 + N/20 seconds, at most 120");
    // The rules, applied as a reader would (N/2 and N/20 rounded up).
    for (const n of [0, 1, 4, 19, 20, 21, 150, 199, 200, 1000, 1999, 5000]) {
      const b = Math.max(10, n + Math.max(10, Math.ceil(n / 2)));
      expect(sizeSshd(n, noOverride), `${n} systems`).toEqual({ maxStartups: `${b}:30:${Math.max(100, 2 * b)}`, maxStartupsEffective: `${b}:30:${Math.max(100, 2 * b)}`, loginGraceTime: Math.min(120, 30 + Math.ceil(n / 20)) });
    }
    const help = configKeysHelp();
    expect(help).toMatch(/^ {2}SSHD_MAX_STARTUPS +sshd's MaxStartups on this server \(sized for the fleet's N systems: B:30:2B with B = N \+ max\(10, N\/2\)/m);
    expect(help).toContain(`(${LOGIN_GRACE_TIME_RULE})`);
  });

  it('takes SSHD_MAX_STARTUPS and SSHD_LOGIN_GRACE_TIME as they are', () => {
    expect(sizeSshd(200, { sshdMaxStartups: '50:10:80', sshdLoginGraceTime: 9 })).toEqual({ maxStartups: '50:10:80', maxStartupsEffective: '50:10:80', loginGraceTime: 9 });
    expect(sizeSshd(200, { sshdMaxStartups: '70', sshdLoginGraceTime: null }).maxStartupsEffective).toBe('70:30:70');
    expect(effectiveMaxStartups('300:30:600')).toBe('300:30:600');
  });
});

let dir: string;
let files: RenderedFile[];
let hostKey: string;
const NAMES = Array.from({ length: 200 }, (_, i) => `m${String(i).padStart(3, '0')}`);

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-sshd-sizing-'));
  const systems = NAMES.map((name) => ({ name, kind: 'flake' as const, key: parsePublicKey(testKey(name)) }));
  files = renderFleet({ config: configWith({ chrootDir: '/srv/bento' }), systems });
  writeRendered(path.join(dir, 'generated'), files);
  hostKey = path.join(dir, 'host_key');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `sshd -T` of a configuration file: keyword → value, as sshd resolved it.
 * As root, sshd wants its privilege separation directory (/run/sshd on
 * Debian) even to test a file; on a server, systemd makes it for the unit
 * (RuntimeDirectory=sshd in Debian's ssh.service, whose ExecStartPre is
 * `sshd -t`). This machine may run no sshd, so sshd runs as it would there:
 * in a mount namespace of its own whose /run holds a fresh sshd/ — nothing
 * is created in the machine's /run.
 */
function sshdT(configFile: string): Map<string, string> {
  const asUnit = 'mount -t tmpfs -o mode=0755 bento-sshd-t /run && mkdir -m 0755 /run/sshd && exec "$0" "$@"';
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', asUnit, SSHD, '-T', '-f', configFile, '-o', `HostKey=${hostKey}`], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return new Map(run.stdout.split('\n').filter(Boolean).map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]));
}

const canRunSshd = isRoot && existsSync(SSHD);

describe.skipIf(!canRunSshd)('the generated configurations, as the real sshd reads them', () => {
  it('server/sshd_config: global MaxStartups and LoginGraceTime before the Match block', () => {
    const text = readFileSync(path.join(dir, 'generated/server/sshd_config'), 'utf8');
    const match = text.indexOf('\nMatch Group sftp_users');
    expect(text.indexOf('\nMaxStartups 300:30:600\n')).toBeGreaterThan(0);
    expect(text.indexOf('\nMaxStartups ')).toBeLessThan(match);
    expect(text.indexOf('\nLoginGraceTime 40\n')).toBeLessThan(match);
    const alone = path.join(dir, 'alone.conf');
    writeFileSync(alone, `${text}`);
    const resolved = sshdT(alone);
    expect(resolved.get('maxstartups')).toBe('300:30:600');
    expect(resolved.get('logingracetime')).toBe('40');
  });

  it.skipIf(!existsSync(DEBIAN_SSHD_CONFIG))("Debian: bento.conf in sshd_config.d, included at the top of Debian's sshd_config, wins", () => {
    const debian = readFileSync(DEBIAN_SSHD_CONFIG, 'utf8');
    // Debian 12's file includes sshd_config.d first thing; that is what makes a snippet's first-wins values apply.
    expect(debian).toMatch(/^Include \/etc\/ssh\/sshd_config\.d\/\*\.conf$/m);
    const configD = path.join(dir, 'sshd_config.d');
    mkdirSync(configD);
    // What setup-debian.sh installs.
    writeFileSync(path.join(configD, 'bento.conf'), readFileSync(path.join(dir, 'generated/server/sshd_config')));
    const main = path.join(dir, 'debian_sshd_config');
    writeFileSync(main, debian.replace('Include /etc/ssh/sshd_config.d/*.conf', `Include ${configD}/*.conf`));
    const resolved = sshdT(main);
    expect(resolved.get('maxstartups')).toBe('300:30:600');
    expect(resolved.get('logingracetime')).toBe('40');

    // The trap setup-debian.sh warns about: sshd keeps the last MaxStartups,
    // so one set again in the main file (Debian ships it commented out) wins.
    writeFileSync(main, `${readFileSync(main, 'utf8')}\nMaxStartups 10:30:100\nLoginGraceTime 99\n`);
    const overridden = sshdT(main);
    expect(overridden.get('maxstartups')).toBe('10:30:100');
    expect(overridden.get('logingracetime')).toBe('40');
  });

  it('NixOS: the module sets them through services.openssh.settings, which nixpkgs writes before any Match block', () => {
    const server = path.join(dir, 'generated/server/sftp-server.nix');
    const other = path.join(dir, 'other.nix');
    // Another module's Match block, at the default order: a global line
    // appended to extraConfig after it would be inside it (and refused).
    writeFileSync(other, '{ lib, ... }: { services.openssh.extraConfig = lib.mkOrder 0 "Port 22\\n"; imports = [ { services.openssh.extraConfig = "Match User backup\\n  ForceCommand internal-sftp\\nMatch all\\n"; } ]; }\n');
    const text = evalNixos<string>([server, other], 'sshdConfig');
    expect(text.indexOf('MaxStartups 300:30:600\n')).toBe(text.indexOf('LoginGraceTime 40\n') + 'LoginGraceTime 40\n'.length);
    expect(text.indexOf('MaxStartups')).toBeLessThan(text.indexOf('Match'));
    const file = path.join(dir, 'nixos_sshd_config');
    writeFileSync(file, text);
    const resolved = sshdT(file);
    expect(resolved.get('maxstartups')).toBe('300:30:600');
    expect(resolved.get('logingracetime')).toBe('40');

    // The server's own configuration can still choose.
    const own = path.join(dir, 'own.nix');
    writeFileSync(own, '{ services.openssh.settings.MaxStartups = "50:30:100"; }\n');
    writeFileSync(file, evalNixos<string>([server, own], 'sshdConfig'));
    expect(sshdT(file).get('maxstartups')).toBe('50:30:100');
  });
});
