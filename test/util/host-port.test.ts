/** Host names and host[:port] addresses as config.sh writes them. */
import { describe, expect, it } from 'vitest';
import { isHost, splitHostPort } from '../../src/util/host-port.js';

describe('isHost', () => {
  it.each(['h', 'bento.example.org', 'bento.example.org.', '10.0.0.1', '::1', 'fe80::1', '::ffff:10.0.0.1', 'a-1.b2'])('accepts %s', (host) => {
    expect(isHost(host)).toBe(true);
  });

  it.each(['', '-h', 'h-', 'a..b', 'a_b.example', 'h:22', '[::1]', 'h;reboot', 'a b', '.lan'])('refuses %j', (host) => {
    expect(isHost(host)).toBe(false);
  });
});

describe('splitHostPort', () => {
  it('splits host, host:port, [v6] and [v6]:port', () => {
    expect(splitHostPort('h')).toEqual({ host: 'h', port: null });
    expect(splitHostPort('h.example:2222')).toEqual({ host: 'h.example', port: 2222 });
    expect(splitHostPort('10.0.0.1:22')).toEqual({ host: '10.0.0.1', port: 22 });
    expect(splitHostPort('[::1]')).toEqual({ host: '::1', port: null });
    expect(splitHostPort('[fe80::1]:9')).toEqual({ host: 'fe80::1', port: 9 });
  });

  it.each(['', '::1', 'h:', 'h:123456', 'h:x', '[::1]:', '[h]', 'h:1:2', '-h:22', '[::1]x'])('refuses %j', (address) => {
    expect(splitHostPort(address)).toBeUndefined();
  });
});
