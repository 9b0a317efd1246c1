/**
 * The parsers of config.sh values, called directly: each converts a good
 * value, and refuses a bad one with a message that follows the key's name.
 * config.test.ts checks them through config.sh, with the line they are on.
 */
import { describe, expect, it } from 'vitest';
import {
  uidRange,
  byteSize,
  calendar,
  chrootDir,
  domain,
  flag,
  integerIn,
  MAX_REMOTE_HOSTS,
  notifyCommand,
  notifyUrl,
  parseDuration,
  parseMaxStartups,
  parseRemoteHosts,
  parseRolloutWaves,
  parseTriggerAddresses,
  storeUrl,
  timeSpan,
  words,
} from '../../src/config/values.js';

describe('the value parsers', () => {
  it('parseRolloutWaves: waves by spaces, members by commas; none is undefined', () => {
    expect(parseRolloutWaves('t470,router  web-* *')).toEqual([['t470', 'router'], ['web-*'], ['*']]);
    expect(parseRolloutWaves(' \t ')).toBeUndefined();
    expect(() => parseRolloutWaves('a,,b')).toThrow('has "", which is neither a system name nor a glob');
    expect(() => parseRolloutWaves('../etc')).toThrow('has "../etc"');
  });

  it('parseDuration: one number and one unit, in seconds, never zero', () => {
    expect([parseDuration('90'), parseDuration('30min'), parseDuration('2h'), parseDuration('1d'), parseDuration('5 s')]).toEqual([90, 1800, 7200, 86400, 5]);
    for (const bad of ['0', '1w', '1h 30min', '-5', 'min', '1.5h']) expect(() => parseDuration(bad)).toThrow('is not a duration');
  });

  it('integerIn: a whole number within its bounds', () => {
    const port = integerIn(1, 65535, 'a TCP port');
    expect(port('22')).toBe(22);
    expect(() => port('0')).toThrow('must be between 1 and 65535, got 0');
    expect(() => port('65536')).toThrow('must be between 1 and 65535, got 65536');
    expect(() => port('2e3')).toThrow('must be a number (a TCP port), got "2e3"');
    expect(() => port('')).toThrow('must be a number');
  });

  it('flag: empty or 0 is off, 1 is on, anything else refused', () => {
    expect([flag(''), flag('0'), flag('1')]).toEqual([false, false, true]);
    expect(() => flag('yes')).toThrow('must be 0 or 1, got "yes"');
  });

  it('storeUrl: a URL the machines can read back; empty for none', () => {
    expect(storeUrl('')).toBe('');
    expect(storeUrl('s3://bucket?region=eu-west-1')).toBe('s3://bucket?region=eu-west-1');
    expect(storeUrl('file:///srv/cache')).toBe('file:///srv/cache');
    for (const bad of ['/srv/cache', 'https://a b', 'https://a$(x)', "https://a'", 'https://a\\b', 'https://a`x`']) expect(() => storeUrl(bad)).toThrow('is not a store URL');
  });

  it('notifyCommand: one line of shell', () => {
    expect(notifyCommand('logger -t bento "$BENTO_ALERT"')).toBe('logger -t bento "$BENTO_ALERT"');
    expect(() => notifyCommand('a\nb')).toThrow('must be one line of shell');
  });

  it('notifyUrl: http or https, and never quoted back (it may hold a token)', () => {
    expect(notifyUrl('')).toBe('');
    expect(notifyUrl('https://ntfy.example.org/bento?token=s3cret')).toBe('https://ntfy.example.org/bento?token=s3cret');
    expect(() => notifyUrl('not a url')).toThrow('is not a URL');
    expect(() => notifyUrl('ftp://s3cret@host/')).toThrow('must be an http:// or https:// URL, not ftp:');
    for (const bad of ['ftp://s3cret@host/', 'https://h/s3cret\tx', 'no s3cret']) {
      expect(() => notifyUrl(bad)).toThrow();
      expect(() => notifyUrl(bad)).not.toThrow(/s3cret/);
    }
  });

  it('byteSize: bytes or K, M, G within its bounds', () => {
    const size = byteSize(64 * 1024, 1024 ** 3);
    expect([size('65536'), size('512K'), size('16M'), size('1G')]).toEqual([65536, 512 * 1024, 16 * 1024 ** 2, 1024 ** 3]);
    expect(() => size('63K')).toThrow('must be between 64K and 1G, got 63K');
    expect(() => size('2G')).toThrow('must be between 64K and 1G, got 2G');
    expect(() => size('16MB')).toThrow('must be a size in bytes');
  });

  it('calendar: what systemd accepts, spaces around it dropped; timeSpan: the characters systemd uses', () => {
    expect(calendar('Sun *-*-* 03:00:00')).toBe('Sun *-*-* 03:00:00');
    expect(calendar(' hourly ')).toBe('hourly');
    expect(() => calendar('daily; reboot')).toThrow('is not a systemd calendar ("daily; reboot"): a name such as daily stands alone');
    expect(() => calendar('hourlyy')).toThrow('is not a systemd calendar ("hourlyy"): "hourlyy" is neither a weekday nor a name such as hourly or daily; see systemd.time(7), e.g. hourly, *:0/15, Mon..Fri 02:00');
    expect(() => calendar('4am')).toThrow('is not a systemd calendar ("4am"): "am" does not belong in a calendar');
    expect(timeSpan('1h 30min')).toBe('1h 30min');
    expect(timeSpan('0')).toBe('0');
    expect(() => timeSpan('$(reboot)')).toThrow('is not a systemd time span');
  });

  it('chrootDir: absolute, normalised, not a directory of the system', () => {
    expect(chrootDir('/srv//bento/')).toBe('/srv/bento');
    expect(() => chrootDir('srv/bento')).toThrow('must be an absolute path, got "srv/bento"');
    expect(() => chrootDir('/srv/bento\n')).toThrow('must not contain control characters');
    expect(() => chrootDir('/home/')).toThrow('/home cannot hold SFTP chroots: /home is a directory of the system itself');
  });

  it('words: split by spaces and tabs; no control characters', () => {
    expect(words(' --fallback\t--option  a b ')).toEqual(['--fallback', '--option', 'a', 'b']);
    expect(words('')).toEqual([]);
    expect(() => words('a\nb')).toThrow('must not contain control characters');
  });

  it('domain: without its leading or trailing dot', () => {
    expect([domain(''), domain('.lan.'), domain('example.org')]).toEqual(['', 'lan', 'example.org']);
    expect(() => domain('-bad')).toThrow('is not a DNS domain: "-bad"');
  });

  it('parseRemoteHosts: hosts by spaces or commas, each once, at most MAX_REMOTE_HOSTS', () => {
    expect(parseRemoteHosts('a.example, 10.0.0.1 ::1')).toEqual(['a.example', '10.0.0.1', '::1']);
    expect(() => parseRemoteHosts(' , ')).toThrow('is empty');
    expect(() => parseRemoteHosts('a b a')).toThrow('lists a twice');
    expect(() => parseRemoteHosts('a;b')).toThrow('is not a host name or IP address: "a;b"');
    const many = Array.from({ length: MAX_REMOTE_HOSTS + 1 }, (_, i) => `h${i}`).join(' ');
    expect(() => parseRemoteHosts(many)).toThrow(`lists ${MAX_REMOTE_HOSTS + 1} servers; at most ${MAX_REMOTE_HOSTS}`);
  });

  it('parseMaxStartups: begin or begin:rate:full, as sshd checks it', () => {
    expect(parseMaxStartups('300:30:600')).toBe('300:30:600');
    expect(parseMaxStartups('40')).toBe('40');
    expect(() => parseMaxStartups('0')).toThrow('at least 1');
    expect(() => parseMaxStartups('40:0:80')).toThrow('rate must be between 1 and 100 (percent), got 0');
    expect(() => parseMaxStartups('40:30:20')).toThrow('full (20) must be at least begin (40)');
    expect(() => parseMaxStartups('40:30')).toThrow('must be begin or begin:rate:full');
  });

  it('parseTriggerAddresses: name=address pairs', () => {
    expect(parseTriggerAddresses('a=h1, b=[::1]:9 c=h.example:8080')).toEqual({ a: 'h1', b: '[::1]:9', c: 'h.example:8080' });
    expect(parseTriggerAddresses('')).toEqual({});
    expect(() => parseTriggerAddresses('=h')).toThrow('must be name=host pairs, got "=h"');
    expect(() => parseTriggerAddresses('a')).toThrow('must be name=host pairs');
    expect(() => parseTriggerAddresses('Laptop=h')).toThrow('names a system that cannot exist: "Laptop"');
    expect(() => parseTriggerAddresses('a=h a=g')).toThrow('gives a twice');
    expect(() => parseTriggerAddresses('a=h:0')).toThrow('a: port 0 is not a TCP port');
    expect(() => parseTriggerAddresses('a=::1')).toThrow('a: "::1" is not host, host:port, [IPv6] or [IPv6]:port');
  });
});

describe('uidRange (SFTP_UIDS)', () => {
  it('reads first-last', () => {
    expect(uidRange('70000-99999')).toEqual({ first: 70000, last: 99999 });
    expect(uidRange('1000-1999')).toEqual({ first: 1000, last: 1999 });
  });

  it.each([
    ['70000', /first-last/],
    ['500-2000', /1000 or above/],
    ['70000-69999', /at or after its start/],
    ['60000-70000', /65534 \(nobody\)/],
    ['70000-4294967294', /2147483647 or below/],
  ])('refuses %j', (raw, message) => {
    expect(() => uidRange(raw)).toThrow(message);
  });
});
