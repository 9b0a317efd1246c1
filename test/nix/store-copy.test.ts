/** Binary-cache helpers: narinfo parsing on recorded Nix 2.8 output, store URLs for signing copies. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashPartOf, parseNarinfo, removeAutoRoots, removeIndirectGcRoot, signingStoreUrl } from '../../src/nix/store-copy.js';

// Written by `nix copy --to 'file:///…?secret-key=…&compression=xz'` (Nix 2.8).
const RECORDED = `StorePath: /nix/store/hfpi0sfd1h93ikavac3if9sbbw5isxjv-nixos-system-x-2
URL: nar/17irmbsg848h0nw4lwi18vydip1cqdvhsf1p30vcnkq44i6fj5bg.nar.xz
Compression: xz
FileHash: sha256:17irmbsg848h0nw4lwi18vydip1cqdvhsf1p30vcnkq44i6fj5bg
FileSize: 384
NarHash: sha256:0p4kkgms2dxa07yjfdlqxm1z1kfbf1ci6n0a95xr6nqs6ms7zibw
NarSize: 1016
References: izryi0axsl9ldrz7lkv6wf7skyy4jzhp-pkg-a jqha3h2qsi7p4i6b6i3p190aahj38753-pkg-b-2 ph2yqwnfihq72s8isq34w31v94gw0jd5-pkg-c
Deriver: 2qzjbdr7rx5sv6b4jbm0rwq8hykzbyr6-nixos-system-x-2.drv
Sig: test-1:7aVHxv2Rx6S9Uyr2P2MFk5BJpljQmZ4HDmAq5F1wS6yNrsmyWCNKmZD3vJhOVvGEHVHfnX6UFtKPkZC3WjvZDg==
`;

describe('parseNarinfo', () => {
  it('reads the fields bento and the machines use', () => {
    expect(parseNarinfo(RECORDED)).toEqual({
      storePath: '/nix/store/hfpi0sfd1h93ikavac3if9sbbw5isxjv-nixos-system-x-2',
      url: 'nar/17irmbsg848h0nw4lwi18vydip1cqdvhsf1p30vcnkq44i6fj5bg.nar.xz',
      compression: 'xz',
      fileSize: 384,
      narHash: 'sha256:0p4kkgms2dxa07yjfdlqxm1z1kfbf1ci6n0a95xr6nqs6ms7zibw',
      narSize: 1016,
      references: ['izryi0axsl9ldrz7lkv6wf7skyy4jzhp-pkg-a', 'jqha3h2qsi7p4i6b6i3p190aahj38753-pkg-b-2', 'ph2yqwnfihq72s8isq34w31v94gw0jd5-pkg-c'],
      sigs: ['test-1:7aVHxv2Rx6S9Uyr2P2MFk5BJpljQmZ4HDmAq5F1wS6yNrsmyWCNKmZD3vJhOVvGEHVHfnX6UFtKPkZC3WjvZDg=='],
    });
  });

  it('takes "References: " with nothing after it (a path without references)', () => {
    const text = RECORDED.replace(/^References: .*$/m, 'References: ');
    expect(parseNarinfo(text).references).toEqual([]);
    expect(parseNarinfo(RECORDED.replace(/^References: .*$/m, 'References:')).references).toEqual([]);
  });

  it('refuses a NAR outside nar/, a path outside the store, a missing field, a bad number', () => {
    expect(() => parseNarinfo(RECORDED.replace(/^URL: .*$/m, 'URL: nar/../../etc/passwd'))).toThrow(/URL is not nar/);
    expect(() => parseNarinfo(RECORDED.replace(/^StorePath: .*$/m, 'StorePath: /nix/store/../../etc'))).toThrow(/StorePath is not a store path/);
    expect(() => parseNarinfo(RECORDED.replace(/^NarHash: .*\n/m, ''))).toThrow('narinfo without NarHash');
    expect(() => parseNarinfo(RECORDED.replace(/^FileSize: .*$/m, 'FileSize: -1'))).toThrow(/FileSize is not a number/);
    // A leading zero, or more digits than a JavaScript number holds exactly.
    expect(() => parseNarinfo(RECORDED.replace(/^FileSize: .*$/m, 'FileSize: 08'))).toThrow(/FileSize is not a number/);
    expect(() => parseNarinfo(RECORDED.replace(/^NarSize: .*$/m, 'NarSize: 12345678901234567890'))).toThrow(/NarSize is not a number/);
    expect(() => parseNarinfo(`${RECORDED}garbage\n`)).toThrow(/not a narinfo line/);
  });

  it('names the narinfo of a store path by its hash part', () => {
    expect(hashPartOf('/nix/store/hfpi0sfd1h93ikavac3if9sbbw5isxjv-nixos-system-x-2')).toBe('hfpi0sfd1h93ikavac3if9sbbw5isxjv');
  });
});

describe('signingStoreUrl', () => {
  it('adds the secret key (percent-encoded) and the compression', () => {
    expect(signingStoreUrl('file:///srv/pool', '/var/lib/bento/key & co', 'zstd', 12)).toBe(
      'file:///srv/pool?secret-key=%2Fvar%2Flib%2Fbento%2Fkey%20%26%20co&compression=zstd&compression-level=12',
    );
    expect(signingStoreUrl('s3://bucket?region=eu-west-1', '/k', 'xz', 6)).toBe('s3://bucket?region=eu-west-1&secret-key=%2Fk&compression=xz&compression-level=6');
  });

  it("keeps the URL's own compression and key", () => {
    expect(signingStoreUrl('s3://bucket?compression=xz', '/k', 'zstd', 12)).toBe('s3://bucket?compression=xz&secret-key=%2Fk');
    expect(signingStoreUrl('file:///c?secret-key=/mine&compression=none', '/k')).toBe('file:///c?secret-key=/mine&compression=none');
  });
});

describe("the records of indirect GC roots (Nix's gcroots/auto)", () => {
  it('removeAutoRoots removes the records whose link matches, and leaves the others and what is no link', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-auto-roots-'));
    try {
      const auto = path.join(dir, 'auto');
      mkdirSync(auto);
      symlinkSync('/srv/a/root', path.join(auto, 'one'));
      symlinkSync('/srv/a/other', path.join(auto, 'two'));
      symlinkSync('/srv/b/root', path.join(auto, 'three'));
      writeFileSync(path.join(auto, 'file'), '');
      removeAutoRoots((link) => link.startsWith('/srv/a/'), auto);
      expect(readdirSync(auto).sort()).toEqual(['file', 'three']);
      removeAutoRoots(() => true, path.join(dir, 'missing'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removeIndirectGcRoot removes the root and the record of exactly that link', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-auto-roots-'));
    try {
      const auto = path.join(dir, 'auto');
      mkdirSync(auto);
      const root = path.join(dir, 'root');
      symlinkSync('/nix/store/x', root);
      symlinkSync(root, path.join(auto, 'one'));
      symlinkSync(`${root}2`, path.join(auto, 'two'));
      removeIndirectGcRoot(root, auto);
      expect(readdirSync(dir).sort()).toEqual(['auto']);
      expect(readdirSync(auto)).toEqual(['two']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
