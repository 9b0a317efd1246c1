/** The server's signing key: made by Nix on first use, in the right place, with the right modes. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { loadSigningKey, newKeyName, parseNixKey, publicKeyOfSecret, signingKeyPlacementProblem } from '../../src/nix/signing-key.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A key pair made by Nix itself. */
function nixKey(name: string): { secret: string; public: string } {
  const where = mkdtempSync(path.join(dir, 'nix-'));
  execFileSync('nix-store', ['--generate-binary-cache-key', name, path.join(where, 'sec'), path.join(where, 'pub')]);
  return { secret: readFileSync(path.join(where, 'sec'), 'utf8'), public: readFileSync(path.join(where, 'pub'), 'utf8') };
}

describe('Nix keys', () => {
  it('derives the public key from the secret exactly as nix-store writes it', () => {
    const key = nixKey('test-1');
    expect(publicKeyOfSecret(key.secret)).toBe(key.public.trim());
  });

  it('refuses what is not a key of the right kind and length', () => {
    const key = nixKey('test-2');
    expect(() => parseNixKey(key.public, 'secret')).toThrow(/holds 32 bytes, an Ed25519 secret key 64/);
    expect(() => parseNixKey('no-colon', 'public')).toThrow(/expected <name>:<base64>/);
    expect(() => parseNixKey('bad name:AAAA', 'public')).toThrow(/the name made of/);
    expect(() => parseNixKey('name:not base64!', 'public')).toThrow(/not base64/);
    expect(parseNixKey(key.public, 'public').name).toBe('test-2');
  });

  it('names a new key after the host and the day, in the characters a key name may hold', () => {
    expect(newKeyName('srv.example.org', new Date('2025-03-04T10:00:00Z'))).toBe('bento-srv.example.org-20250304');
    expect(newKeyName('weird host/name', new Date('2025-03-04T10:00:00Z'))).toBe('bento-weird-host-name-20250304');
  });
});

describe('loadSigningKey', () => {
  it('makes the key on first use with Nix: the secret 0600, the public key next to it 0644; then reads it back', async () => {
    const secretFile = path.join(dir, 'first', 'lib', 'signing-key');
    const made = await loadSigningKey(secretFile, { keyName: 'bento-test-1' });
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    expect(statSync(`${secretFile}.pub`).mode & 0o777).toBe(0o644);
    expect(made.publicKey).toBe(readFileSync(`${secretFile}.pub`, 'utf8').trim());
    expect(made.publicKey).toBe(publicKeyOfSecret(readFileSync(secretFile, 'utf8')));
    expect(made.publicKey).toMatch(/^bento-test-1:[A-Za-z0-9+/]{43}=$/);
    // Nothing else is left in the directory (the private staging directory is gone).
    expect(execFileSync('ls', ['-A', path.dirname(secretFile)], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()).toEqual(['signing-key', 'signing-key.pub']);
    expect(await loadSigningKey(secretFile)).toEqual(made);
  });

  it('writes a missing .pub from the secret, and refuses a .pub that does not belong to it', async () => {
    const key = nixKey('test-3');
    const secretFile = path.join(dir, 'own-secret');
    writeFileSync(secretFile, key.secret, { mode: 0o600 });
    expect((await loadSigningKey(secretFile, { create: false })).publicKey).toBe(key.public.trim());
    expect(readFileSync(`${secretFile}.pub`, 'utf8').trim()).toBe(key.public.trim());
    writeFileSync(`${secretFile}.pub`, nixKey('test-3').public);
    await expect(loadSigningKey(secretFile)).rejects.toThrow(`${secretFile}.pub is not the public key of ${secretFile}`);
  });

  it('reads the public key alone when the secret is not there (generate on a machine that only renders)', async () => {
    const key = nixKey('test-4');
    const secretFile = path.join(dir, 'public-only');
    writeFileSync(`${secretFile}.pub`, key.public);
    expect((await loadSigningKey(secretFile)).publicKey).toBe(key.public.trim());
  });

  it('without create, a missing key is an error that says how to make one', async () => {
    await expect(loadSigningKey(path.join(dir, 'none'), { create: false })).rejects.toThrow(UserError);
  });

  it('a place it cannot write is an error naming SIGNING_KEY', async () => {
    // Not even root can make a directory in /proc.
    await expect(loadSigningKey('/proc/bento-test/signing-key')).rejects.toMatchObject({
      message: expect.stringMatching(/^cannot create \/proc\/bento-test for the signing key: /),
      hint: expect.stringContaining('set SIGNING_KEY in config.sh to a place you can write'),
    });
  });
});

describe('signingKeyPlacementProblem', () => {
  const fleet = path.join(dir, 'fleet');
  const chroot = path.join(dir, 'chroot');
  mkdirSync(path.join(fleet, 'keys'), { recursive: true });
  mkdirSync(chroot, { recursive: true });
  const forbidden = [
    { label: 'the fleet directory', dir: fleet },
    { label: 'the output directory', dir: path.join(fleet, 'generated') },
    { label: 'CHROOT_DIR', dir: chroot },
  ];

  it('refuses the fleet, generated/ and CHROOT_DIR, also through a symbolic link or a directory not made yet', () => {
    expect(signingKeyPlacementProblem(path.join(fleet, 'keys', 'signing'), forbidden)).toMatch(/is inside the fleet directory/);
    expect(signingKeyPlacementProblem(path.join(fleet, 'generated', 'new', 'key'), forbidden)).toMatch(/inside the fleet directory/);
    expect(signingKeyPlacementProblem(path.join(chroot, 'laptop', 'key'), forbidden)).toMatch(/is inside CHROOT_DIR/);
    symlinkSync(fleet, path.join(dir, 'link-to-fleet'));
    expect(signingKeyPlacementProblem(path.join(dir, 'link-to-fleet', 'key'), forbidden)).toMatch(/inside the fleet directory/);
  });

  it('accepts a place of its own', () => {
    expect(signingKeyPlacementProblem(path.join(dir, 'var-lib-bento', 'signing-key'), forbidden)).toBeUndefined();
    expect(signingKeyPlacementProblem('/var/lib/bento/signing-key', forbidden)).toBeUndefined();
  });
});
