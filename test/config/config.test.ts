import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig, parseConfig } from '../../src/config/config.js';
import { splitHostPort } from '../../src/util/host-port.js';
import { UserError } from '../../src/errors.js';

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, '../fixtures/config', name), 'utf8');

function errorOf(text: string): string {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected parseConfig to fail');
}

describe('config.sh scenarios', () => {
  it('minimal: the two required keys, defaults for the rest', () => {
    const { config, warnings } = parseConfig(fixture('minimal.sh'));
    expect(config).toEqual({ ...DEFAULTS, chrootDir: '/home/chroot', remoteIp: '10.0.0.1', remoteHosts: ['10.0.0.1'] });
    expect(warnings).toEqual([]);
  });

  it('full: every key, export, comments and every quoting style', () => {
    const { config, warnings } = parseConfig(fixture('full.sh'));
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      chrootDir: '/srv/bento chroots',
      remoteIp: 'bento.example.org',
      remoteHosts: ['bento.example.org', 'mirror.example.org'],
      remotePort: 2222,
      timeout: 5,
      noLocalBuild: true,
      rebuildArgs: ['--fallback', '--option', 'connect-timeout', '5'],
      updateCalendar: '*:0/30',
      updateRandomDelay: '10min',
      rebootCalendar: 'Sun 03:00',
      rebootWindow: { text: 'Sat,Sun 02:00-06:00', days: '67', from: 120, to: 360 },
      rebootMax: 3,
      rebootMaxPerWave: 1,
      rebootSlotTime: 90 * 60,
      listenPort: 8080,
      sshdMaxStartups: '500:30:1000',
      sshdLoginGraceTime: 60,
      logKeep: 30,
      connectRetry: 45,
      triggerDomain: 'vpn.example.org',
      triggerAddresses: { laptop: '192.0.2.10', router: 'router.lan:8080', nas: '[fd00::5]:51337' },
      prebuilt: false,
      sftpUids: { first: 200000, last: 209999 },
      signingKey: '/etc/bento/signing-key',
      // Three intervals of UPDATE_CALENDAR='*:0/30' plus UPDATE_RANDOM_DELAY=10min.
      silentAfter: 6000,
      cacheStore: 's3://bento-cache?region=eu-west-1',
      cacheUrl: 'https://cache.example.org',
      rolloutWaves: [['t470', 'router'], ['web-[0-9]*'], ['*']],
      rolloutWait: 45 * 60,
      logSizeLimit: 8 * 1024 * 1024,
      notifyCommand: 'logger -t bento-alert',
      notifyUrl: 'https://ntfy.example.org/fleet?auth=s3cret',
    });
  });

  it('rollout waves and wait: defaults, durations, and what is refused', () => {
    const base = 'CHROOT_DIR=/srv/c\nREMOTE_IP=a.example\n';
    expect(parseConfig(base).config.rolloutWaves).toBeUndefined();
    expect(parseConfig(base).config.rolloutWait).toBe(7200);
    expect(parseConfig(`${base}ROLLOUT_WAVES=""\n`).config.rolloutWaves).toBeUndefined();
    for (const [raw, seconds] of [['90', 90], ['30min', 1800], ['2h', 7200], ['1d', 86400], ['15 m', 900]] as const) {
      expect(parseConfig(`${base}ROLLOUT_WAIT="${raw}"\n`).config.rolloutWait, raw).toBe(seconds);
    }
    expect(() => parseConfig(`${base}ROLLOUT_WAIT=soon\n`)).toThrow('config.sh:3: ROLLOUT_WAIT is not a duration (e.g. 90, 30min, 2h, 1d), got "soon"');
    expect(() => parseConfig(`${base}ROLLOUT_WAIT=0\n`)).toThrow('ROLLOUT_WAIT is not a duration');
    expect(() => parseConfig(`${base}ROLLOUT_WAVES="canary,,rest"\n`)).toThrow('config.sh:3: ROLLOUT_WAVES has "", which is neither a system name nor a glob');
    expect(() => parseConfig(`${base}ROLLOUT_WAVES="Canary"\n`)).toThrow('ROLLOUT_WAVES has "Canary"');
  });

  it.each([
    ['invalid-substitution.sh', 'config.sh:2: variable or command substitution ($) is not allowed in the value of REMOTE_IP'],
    ['invalid-backticks.sh', 'config.sh:2: command substitution (backticks) is not allowed in the value of REMOTE_IP'],
    ['invalid-separator.sh', "config.sh:2: ';' is not allowed in the value of REMOTE_IP"],
    ['invalid-pipe.sh', "config.sh:2: '|' is not allowed: config.sh is parsed, not executed"],
    ['invalid-unquoted-space.sh', 'config.sh:1: unquoted space in the value of CHROOT_DIR (quote it: CHROOT_DIR="/srv/my chroot")'],
    ['invalid-syntax.sh', 'config.sh:2: not a KEY=VALUE assignment: "if true; then REMOTE_IP=a; fi"'],
    ['invalid-missing-chroot.sh', 'config.sh: CHROOT_DIR is required (for example CHROOT_DIR=/home/chroot)'],
    ['invalid-missing-remote.sh', 'config.sh: REMOTE_IP is required (for example REMOTE_IP=bento.example.org)'],
    ['invalid-port.sh', 'config.sh:3: REMOTE_PORT must be a number (a TCP port), got "ssh"'],
    ['invalid-timeout.sh', 'config.sh:3: TIMEOUT must be a number (seconds), got "20s"'],
    ['invalid-relative-chroot.sh', 'config.sh:1: CHROOT_DIR must be an absolute path, got "chroot"'],
    ['invalid-unterminated.sh', 'config.sh:1: unterminated double quote in the value of CHROOT_DIR (values cannot span lines)'],
  ])('%s is refused with the line and the reason', (name, message) => {
    expect(errorOf(fixture(name))).toContain(message);
  });

  it.each(['/', '/tmp', '/tmp/', '/home', '/etc//', '/srv', '/var/lib', '/proc/self', '/nix/store/x'])('CHROOT_DIR=%s (a directory of the system) is refused as deploy refuses it', (dir) => {
    const normal = dir === '/' ? '/' : dir.replace(/\/+$/, '');
    expect(errorOf(`CHROOT_DIR=${dir}\nREMOTE_IP=a\n`)).toBe(
      `config.sh:1: CHROOT_DIR ${normal} cannot hold SFTP chroots: ${normal} is a directory of the system itself; each machine's chroot would be a directory in it (CHROOT_DIR/<name>); give CHROOT_DIR a directory of its own in config.sh, e.g. /srv/bento or /home/chroot`,
    );
  });

  it.each(['/srv/bento', '/home/chroot', '/tmp/bento', '/var/lib/bento'])('CHROOT_DIR=%s (a directory of its own) is accepted', (dir) => {
    expect(parseConfig(`CHROOT_DIR=${dir}\nREMOTE_IP=a\n`).config.chrootDir).toBe(dir);
  });

  it('unknown keys are a warning naming the line', () => {
    const { warnings } = parseConfig(fixture('unknown-key.sh'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^config\.sh:3: unknown key COLOUR \(ignored; known keys: CHROOT_DIR, /);
  });

  it('reports every bad value at once', () => {
    const message = errorOf('CHROOT_DIR=x\nREMOTE_IP=a\nREMOTE_PORT=99999\nTIMEOUT=0\nNOLOCALBUILD=yes\n');
    expect(message.split('\n')).toEqual([
      'config.sh:1: CHROOT_DIR must be an absolute path, got "x"',
      'config.sh:3: REMOTE_PORT must be between 1 and 65535, got 99999',
      'config.sh:4: TIMEOUT must be between 1 and 3600, got 0',
      'config.sh:5: NOLOCALBUILD must be 0 or 1, got "yes"',
    ]);
  });

  it('refuses a host name that is not one, even when quoted', () => {
    // Split into servers first: the first word that is not a host is named.
    expect(errorOf("CHROOT_DIR=/x\nREMOTE_IP='x$(touch /tmp/owned)'\n")).toBe('config.sh:2: REMOTE_IP is not a host name or IP address: "x$(touch"');
  });

  it('accepts IPv4, IPv6 and host names', () => {
    for (const ip of ['192.0.2.7', '::1', 'fe80::1', 'bento.example.org', 'server']) {
      expect(parseConfig(`CHROOT_DIR=/x\nREMOTE_IP=${ip}\n`).config.remoteIp).toBe(ip);
    }
  });

  it('REMOTE_IP may list servers, in the order the machines try them', () => {
    const { config } = parseConfig('CHROOT_DIR=/x\nREMOTE_IP="a.example.org  b.example.org,::1"\n');
    expect(config.remoteHosts).toEqual(['a.example.org', 'b.example.org', '::1']);
    expect(config.remoteIp).toBe('a.example.org');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP="a b a"\n')).toBe('config.sh:2: REMOTE_IP lists a twice');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP="a b;c"\n')).toContain('REMOTE_IP is not a host name or IP address: "b;c"');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP="a b c d e f g h i"\n')).toBe('config.sh:2: REMOTE_IP lists 9 servers; at most 8');
  });

  it('spreads the polls over the calendar interval when UPDATE_RANDOM_DELAY is unset', () => {
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\n').config.updateRandomDelay).toBe('15min');
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR=hourly\n').config.updateRandomDelay).toBe('1h');
    expect(parseConfig("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='*-*-* *:00/5:00'\n").config.updateRandomDelay).toBe('5min');
    // A calendar whose interval bento cannot tell: a minute, still spread, and a warning naming the line.
    const uneven = parseConfig("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='Mon..Fri 09:00'\n");
    expect(uneven.config.updateRandomDelay).toBe('1min');
    expect(uneven.warnings).toEqual([
      "config.sh:3: UPDATE_CALENDAR=Mon..Fri 09:00 repeats at no interval bento can tell, so with UPDATE_RANDOM_DELAY unset the machines' polls are spread over 1min only: set UPDATE_RANDOM_DELAY to the spread you want (at most the shortest gap between two polls), and SILENT_AFTER (unset) is 1d: set it above the longest gap between two polls",
    ]);
    expect(parseConfig("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='04:00'\nSILENT_AFTER=2d\n").warnings).toEqual([
      "config.sh:3: UPDATE_CALENDAR=04:00 repeats at no interval bento can tell, so with UPDATE_RANDOM_DELAY unset the machines' polls are spread over 1min only: set UPDATE_RANDOM_DELAY to the spread you want (at most the shortest gap between two polls)",
    ]);
    expect(parseConfig("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='Mon..Fri 09:00'\nUPDATE_RANDOM_DELAY=30min\n").warnings).toEqual([]);
    // Set, it is used as it is, even 0 (off); longer than the interval is a warning (polls would be rarer).
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_RANDOM_DELAY=0\n').config.updateRandomDelay).toBe('0');
    const long = parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_RANDOM_DELAY="1h 5min"\n');
    expect(long.config.updateRandomDelay).toBe('1h 5min');
    expect(long.warnings).toEqual(['config.sh:3: UPDATE_RANDOM_DELAY=1h 5min is longer than the interval of UPDATE_CALENDAR (15min): machines then poll less often than the calendar says']);
  });

  it('checks the calendars as systemd would, naming their lines', () => {
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR=hourlyy\nREBOOT_CALENDAR=4am\n').split('\n')).toEqual([
      'config.sh:3: UPDATE_CALENDAR is not a systemd calendar ("hourlyy"): "hourlyy" is neither a weekday nor a name such as hourly or daily; see systemd.time(7), e.g. hourly, *:0/15, Mon..Fri 02:00',
      'config.sh:4: REBOOT_CALENDAR is not a systemd calendar ("4am"): "am" does not belong in a calendar (a time is written hh:mm, e.g. 04:00); see systemd.time(7), e.g. hourly, *:0/15, Mon..Fri 02:00',
    ]);
    const { config } = parseConfig("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='Mon..Fri *:0/30 Europe/Berlin'\nUPDATE_RANDOM_DELAY=5min\nREBOOT_CALENDAR='Sat,Sun 04:00'\n");
    expect([config.updateCalendar, config.rebootCalendar]).toEqual(['Mon..Fri *:0/30 Europe/Berlin', 'Sat,Sun 04:00']);
  });

  it('checks SSHD_MAX_STARTUPS as sshd would, before sshd refuses to start', () => {
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nSSHD_MAX_STARTUPS=40\n').config.sshdMaxStartups).toBe('40');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nSSHD_MAX_STARTUPS=40:30\n')).toContain('SSHD_MAX_STARTUPS must be begin or begin:rate:full');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nSSHD_MAX_STARTUPS=40:130:80\n')).toContain('rate must be between 1 and 100');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nSSHD_MAX_STARTUPS=40:30:20\n')).toContain('full (20) must be at least begin (40)');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nSSHD_MAX_STARTUPS=0\n')).toContain('at least 1');
  });

  it('reads TRIGGER_ADDRESSES as name=address pairs, refusing what cannot be a system or an address', () => {
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_ADDRESSES="a=h1,b=[::1]:9"\n').config.triggerAddresses).toEqual({ a: 'h1', b: '[::1]:9' });
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_ADDRESSES=Laptop=h\n')).toContain('names a system that cannot exist: "Laptop"');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_ADDRESSES="a=h a=g"\n')).toContain('gives a twice');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_ADDRESSES=a=h:99999\n')).toContain('a: port 99999 is not a TCP port');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_ADDRESSES=a=::1\n')).toContain('a: "::1" is not host, host:port, [IPv6] or [IPv6]:port');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_DOMAIN=-bad\n')).toContain('TRIGGER_DOMAIN is not a DNS domain');
    expect(parseConfig('CHROOT_DIR=/x\nREMOTE_IP=a\nTRIGGER_DOMAIN=.lan.\n').config.triggerDomain).toBe('lan');
    expect(splitHostPort('[fe80::1]')).toEqual({ host: 'fe80::1', port: null });
    expect(splitHostPort('h.example:80')).toEqual({ host: 'h.example', port: 80 });
  });

  it('reads LOG_SIZE_LIMIT in bytes or K, M, G, within 64K..1G', () => {
    const limit = (value: string) => parseConfig(`CHROOT_DIR=/x\nREMOTE_IP=a\nLOG_SIZE_LIMIT=${value}\n`).config.logSizeLimit;
    expect(limit('65536')).toBe(65536);
    expect(limit('512K')).toBe(512 * 1024);
    expect(limit('1G')).toBe(1024 ** 3);
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nLOG_SIZE_LIMIT=16MB\n')).toBe('config.sh:3: LOG_SIZE_LIMIT must be a size in bytes, optionally with K, M or G (e.g. 16M), got "16MB"');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nLOG_SIZE_LIMIT=1K\n')).toBe('config.sh:3: LOG_SIZE_LIMIT must be between 64K and 1G, got 1K');
    expect(errorOf('CHROOT_DIR=/x\nREMOTE_IP=a\nLOG_SIZE_LIMIT=2G\n')).toBe('config.sh:3: LOG_SIZE_LIMIT must be between 64K and 1G, got 2G');
  });

  it('normalises CHROOT_DIR', () => {
    expect(parseConfig('CHROOT_DIR=/srv//bento/\nREMOTE_IP=a\n').config.chrootDir).toBe('/srv/bento');
  });
});

describe('prebuilt settings', () => {
  const base = 'CHROOT_DIR=/srv/chroot\nREMOTE_IP=a\n';

  it('PREBUILT=1 with NOLOCALBUILD=1 is refused: there would be nothing to hand over', () => {
    expect(errorOf(`${base}NOLOCALBUILD=1\nPREBUILT=1\n`)).toBe(
      'config.sh:4: PREBUILT=1 needs the systems built here, but NOLOCALBUILD=1 (line 3) only evaluates them: there would be nothing to hand over; remove one of them',
    );
    expect(parseConfig(`${base}PREBUILT=1\n`).config.prebuilt).toBe(true);
    expect(errorOf(`${base}PREBUILT=yes\n`)).toBe('config.sh:3: PREBUILT must be 0 or 1, got "yes"');
  });

  it('SILENT_AFTER is a duration, by default three intervals of UPDATE_CALENDAR plus UPDATE_RANDOM_DELAY', () => {
    expect(parseConfig(base).config.silentAfter).toBe(3600);
    expect(parseConfig(`${base}UPDATE_CALENDAR=hourly\n`).config.silentAfter).toBe(4 * 3600);
    expect(parseConfig(`${base}UPDATE_CALENDAR=hourly\nUPDATE_RANDOM_DELAY=0\n`).config.silentAfter).toBe(3 * 3600);
    expect(parseConfig(`${base}SILENT_AFTER=3h\n`).config.silentAfter).toBe(3 * 3600);
    expect(errorOf(`${base}SILENT_AFTER=soon\n`)).toBe('config.sh:3: SILENT_AFTER is not a duration (e.g. 90, 30min, 2h, 1d), got "soon"');
  });

  it('SIGNING_KEY is an absolute path, /var/lib/bento/signing-key by default', () => {
    expect(parseConfig(base).config.signingKey).toBe('/var/lib/bento/signing-key');
    expect(parseConfig(`${base}SIGNING_KEY=/etc//bento/key\n`).config.signingKey).toBe('/etc/bento/key');
    expect(errorOf(`${base}SIGNING_KEY=key\n`)).toBe('config.sh:3: SIGNING_KEY must be an absolute path, got "key"');
  });

  it('CACHE_STORE and CACHE_URL go together, and are URLs the machines can read back', () => {
    const config = parseConfig(`${base}CACHE_STORE='s3://bucket?region=eu-west-1&compression=xz'\nCACHE_URL=https://cache.example.org/bento\n`).config;
    expect([config.cacheStore, config.cacheUrl]).toEqual(['s3://bucket?region=eu-west-1&compression=xz', 'https://cache.example.org/bento']);
    expect(errorOf(`${base}CACHE_STORE=file:///srv/cache\n`)).toBe(
      'config.sh:3: CACHE_STORE needs CACHE_URL: CACHE_STORE is where deploy copies the prebuilt closures, CACHE_URL where the machines download them from',
    );
    expect(errorOf(`${base}CACHE_URL=http://a\n`)).toMatch(/^config\.sh:3: CACHE_URL needs CACHE_STORE/);
    expect(errorOf(`${base}CACHE_STORE="file:///srv/it's"\nCACHE_URL=http://a\n`)).toMatch(/^config\.sh:3: CACHE_STORE is not a store URL/);
    expect(errorOf(`${base}CACHE_STORE=/srv/cache\nCACHE_URL=http://a\n`)).toMatch(/CACHE_STORE is not a store URL such as file:\/\/\/srv\/cache/);
  });
});

describe('loadConfig', () => {
  const dirs: string[] = [];
  const savedPath = process.env.PATH;
  afterEach(() => {
    process.env.PATH = savedPath;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A fleet directory with this config.sh, and on PATH a systemd-analyze that refuses Europe/berlin, or none. */
  function fleetWith(text: string, systemdAnalyze: 'refuses Europe/berlin' | 'absent'): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-config-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'config.sh'), text);
    if (systemdAnalyze === 'absent') {
      process.env.PATH = mkdirSync(path.join(dir, 'empty-path'), { recursive: true }) ?? '';
    } else {
      // As systemd-analyze answers a time zone its tzdata does not have (names are case-sensitive there).
      const stub = path.join(dir, 'systemd-analyze');
      // It judges each expression it is given, as the real one does.
      writeFileSync(
        stub,
        `#!/bin/sh\nshift\nstatus=0\nfor spec in "$@"; do\n  case $spec in *Europe/berlin) echo "Failed to parse calendar specification '$spec': Invalid argument" >&2; status=1 ;; *) echo "Normalized form: $spec" ;; esac\ndone\nexit $status\n`,
      );
      chmodSync(stub, 0o755);
      process.env.PATH = `${dir}:${savedPath}`;
    }
    return dir;
  }

  it('refuses a config.sh that is not a regular file, without waiting on a FIFO or reading a device to its end', async () => {
    const fleet = fleetWith('', 'refuses Europe/berlin');
    const file = path.join(fleet, 'config.sh');
    rmSync(file);
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    await expect(loadConfig(fleet, { askSystemd: false })).rejects.toThrow(`${file} is not a regular file: bento reads the fleet's settings from it`);
    rmSync(file);
    symlinkSync('/dev/zero', file);
    await expect(loadConfig(fleet, { askSystemd: false })).rejects.toThrow(UserError);
    // A link to a regular file (inside the fleet, say) is read as before.
    rmSync(file);
    writeFileSync(path.join(fleet, 'settings.sh'), 'CHROOT_DIR=/srv/bento\nREMOTE_IP=192.0.2.1\n');
    symlinkSync('settings.sh', file);
    expect((await loadConfig(fleet, { askSystemd: false })).config.chrootDir).toBe('/srv/bento');
  });

  it("reads a config.sh linked out of the fleet directory only when everyone may read it: a syntax error would quote a file of root's", async () => {
    const fleet = fleetWith('', 'refuses Europe/berlin');
    const file = path.join(fleet, 'config.sh');
    const outside = mkdtempSync(path.join(os.tmpdir(), 'bento-config-outside-'));
    try {
      chmodSync(outside, 0o755);
      writeFileSync(path.join(outside, 'shadow'), 'root:$6$secret:20228:0:99999:7:::\n', { mode: 0o600 });
      rmSync(file);
      symlinkSync(path.join(outside, 'shadow'), file);
      const message = await loadConfig(fleet, { askSystemd: false }).then(() => '', (error: Error) => error.message);
      expect(message).not.toContain('$6$');
      expect(message).toBe(
        `${file} is not read: it is ${path.join(outside, 'shadow')}, outside the fleet directory, which not everyone may read. bento reads the fleet's settings from it as root and quotes it in its messages: keep the file in the fleet directory, or make it readable by everyone`,
      );
      // The same file readable by everyone (an administrator's /etc/bento/config.sh, say): read.
      writeFileSync(path.join(outside, 'settings'), 'CHROOT_DIR=/srv/bento\nREMOTE_IP=192.0.2.1\n', { mode: 0o644 });
      rmSync(file);
      symlinkSync(path.join(outside, 'settings'), file);
      expect((await loadConfig(fleet, { askSystemd: false })).config.chrootDir).toBe('/srv/bento');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('reads config.sh no further than a limit (a fleet writer may grow it while it is read), naming it', async () => {
    const fleet = fleetWith('', 'refuses Europe/berlin');
    const file = path.join(fleet, 'config.sh');
    // Sparse: a regular file as large as it says, that nobody wrote.
    truncateSync(file, 16 * 1024 * 1024 + 1);
    const message = await loadConfig(fleet, { askSystemd: false }).then(() => '', (error: Error) => error.message);
    expect(message.length).toBeLessThan(1000);
    expect(message).toBe(`${file} holds more than 16 MiB: bento reads the fleet's settings from it, which take far less`);
  });

  it("asks systemd-analyze where it exists, which knows the server's time zones, naming the line", async () => {
    const fleet = fleetWith("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='*:0/30 Europe/berlin'\n", 'refuses Europe/berlin');
    await expect(loadConfig(fleet)).rejects.toThrow(
      `${path.relative(process.cwd(), path.join(fleet, 'config.sh'))}:3: UPDATE_CALENDAR is not a calendar systemd accepts ("*:0/30 Europe/berlin"): systemd-analyze calendar says: Failed to parse calendar specification '*:0/30 Europe/berlin': Invalid argument`,
    );
  });

  it('asks it about every calendar at once and names each one it refuses', async () => {
    const fleet = fleetWith("CHROOT_DIR=/x\nREMOTE_IP=a\nREBOOT_CALENDAR='04:00 Europe/berlin'\nUPDATE_CALENDAR='*:0/30'\n", 'refuses Europe/berlin');
    const error = await loadConfig(fleet).then(() => undefined, (thrown: Error) => thrown);
    expect(error?.message).toContain(':3: REBOOT_CALENDAR is not a calendar systemd accepts ("04:00 Europe/berlin")');
    expect(error?.message).not.toContain('UPDATE_CALENDAR');
  });

  it('is not asked by a command that only reads config.sh (askSystemd: false): no process on every status', async () => {
    const fleet = fleetWith("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='*:0/30 Europe/berlin'\n", 'refuses Europe/berlin');
    expect((await loadConfig(fleet, { askSystemd: false })).config.updateCalendar).toBe('*:0/30 Europe/berlin');
    await expect(loadConfig(fleet)).rejects.toThrow('UPDATE_CALENDAR is not a calendar systemd accepts');
  });

  it("without systemd-analyze, bento's own reading of systemd.time(7) decides", async () => {
    const fleet = fleetWith("CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR='*:0/30 Europe/berlin'\n", 'absent');
    expect((await loadConfig(fleet)).config.updateCalendar).toBe('*:0/30 Europe/berlin');
    await expect(loadConfig(fleetWith('CHROOT_DIR=/x\nREMOTE_IP=a\nUPDATE_CALENDAR=hourlyy\n', 'absent'))).rejects.toThrow(':3: UPDATE_CALENDAR is not a systemd calendar ("hourlyy")');
  });
});

describe('REBOOT_WINDOW', () => {
  const base = 'CHROOT_DIR=/srv/bento\nREMOTE_IP=bento.example.org\n';

  it('is unset by default (any time), normalised when set, refused naming its line', () => {
    expect(parseConfig(base).config.rebootWindow).toBeUndefined();
    expect(parseConfig(`${base}REBOOT_WINDOW=''\n`).config.rebootWindow).toBeUndefined();
    expect(parseConfig(`${base}REBOOT_WINDOW="Mon..Sun 2:00-5:00"\n`).config.rebootWindow).toEqual({ text: '* 02:00-05:00', days: '1234567', from: 120, to: 300 });
    expect(errorOf(`${base}\nREBOOT_WINDOW="Fri..Mon 02:00-05:00"\n`)).toContain('config.sh:4: REBOOT_WINDOW has the range "Fri..Mon", which goes backwards');
  });
});
