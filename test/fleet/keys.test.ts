/** The machines' SSH public keys (src/fleet/keys.ts): one line, a known type, base64 whose embedded type matches. */
import { describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/fleet/keys.js';
import { testKey } from '../helpers/fleet.js';

describe('parsePublicKey', () => {
  it('accepts a key with a comment, even one with quotes', () => {
    const key = parsePublicKey(`${testKey('x').replace('root@x', `root@x "o'brien"`)}\n`);
    expect(key.type).toBe('ssh-ed25519');
    expect(key.comment).toBe(`root@x "o'brien"`);
  });
  it.each([
    ['', 'the file holds no key'],
    [`${testKey('a')}\n${testKey('b')}\n`, 'exactly one key line, found 2'],
    ['ssh-dss AAAA', 'unsupported key type "ssh-dss"'],
    [`command="x" ${testKey('a')}`, 'the line does not start with a key type (expected one of ssh-ed25519'],
    ['ssh-rsa ' + testKey('a').split(' ')[1], 'does not match its type ssh-rsa'],
    [`${testKey('a')}\u001b[31m`, 'control characters'],
  ])('refuses %j', (text, message) => {
    expect(() => parsePublicKey(text)).toThrow(message);
  });

  it.each([
    ['an OpenSSH private key', 'OPENSSH PRIVATE KEY', 7],
    ['a PEM RSA private key', 'RSA PRIVATE KEY', 27],
    ['a PKCS#8 private key', 'PRIVATE KEY', 3],
    ['an encrypted PKCS#8 private key', 'ENCRYPTED PRIVATE KEY', 5],
  ])('says %s is a private key, never quoting it', (_what, label, lines) => {
    const secret = Array.from({ length: lines }, (_, i) => `s3cretLine${i}AAAAB3NzaC1yc2EAAAADAQABAAABAQ`).join('\n');
    const text = `-----BEGIN ${label}-----\n${secret}\n-----END ${label}-----\n`;
    expect(() => parsePublicKey(text)).toThrow('the file holds a private key, not a public one: take it out of the fleet directory');
    expect(() => parsePublicKey(text)).not.toThrow(/s3cret|found \d+/);
  });

  it('says a PuTTY key file is a private key, and never quotes a line that is not a key type', () => {
    expect(() => parsePublicKey('PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\ns3cret\n')).toThrow('holds a private key');
    expect(() => parsePublicKey('AAAAs3cret+/==\n')).toThrow('the line does not start with a key type');
    expect(() => parsePublicKey('AAAAs3cret+/==\n')).not.toThrow(/s3cret/);
  });
});
