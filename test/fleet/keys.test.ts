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
    [`command="x" ${testKey('a')}`, 'unsupported key type'],
    ['ssh-rsa ' + testKey('a').split(' ')[1], 'does not match its type ssh-rsa'],
    [`${testKey('a')}\u001b[31m`, 'control characters'],
  ])('refuses %j', (text, message) => {
    expect(() => parsePublicKey(text)).toThrow(message);
  });
});
