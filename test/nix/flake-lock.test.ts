/** Reading flake.lock and reporting what changed, without Nix. */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { reportFlake } from '../../src/commands/flake-update.js';
import { findFlakes } from '../../src/fleet/host-tree.js';
import { compareLocks, describeLockChange, flakeUpdateArgs, lockHasInput, lockPinsEvaluation, parseFlakeLock, rootInputNames, shortNarHash } from '../../src/nix/flake-lock.js';

/** A lock file as Nix 2.8 writes it: github inputs, a nested input and a `follows`. */
function lockText(nixpkgsRev: string, hmNixpkgsRev = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'): string {
  return JSON.stringify({
    nodes: {
      'home-manager': {
        inputs: { nixpkgs: 'nixpkgs_2', utils: ['nixpkgs'] },
        locked: { lastModified: 1700000000, narHash: 'sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=', owner: 'nix-community', repo: 'home-manager', rev: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', type: 'github' },
        original: { owner: 'nix-community', repo: 'home-manager', type: 'github' },
      },
      nixpkgs: {
        locked: { lastModified: 1700000000, narHash: 'sha256-LnMRXZSQmslp0hUzaBK4zZ/lnS5XqvQthBmv0IrCh1c=', owner: 'NixOS', repo: 'nixpkgs', rev: nixpkgsRev, type: 'github' },
        original: { owner: 'NixOS', ref: 'nixos-24.05', repo: 'nixpkgs', type: 'github' },
      },
      nixpkgs_2: {
        locked: { lastModified: 1700000000, narHash: 'sha256-4/dryNSsO5m950L20f49+ME16cIH2L6VAF4E+s/DMY0=', owner: 'NixOS', repo: 'nixpkgs', rev: hmNixpkgsRev, type: 'github' },
        original: { owner: 'NixOS', repo: 'nixpkgs', type: 'github' },
      },
      root: { inputs: { 'home-manager': 'home-manager', nixpkgs: 'nixpkgs', self2: ['nixpkgs'] } },
    },
    root: 'root',
    version: 7,
  });
}

const REV1 = '1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b';

/**
 * The lock Nix 2.8 writes for a wrapper flake whose input `input` is the
 * flake locked by `text`, reusing its nodes: the flake's root becomes the
 * node `input`, and every follows path starts at the wrapper's root.
 */
function wrapperLock(text: string, input = 'flake0', edit: (nodes: Record<string, { inputs?: Record<string, unknown>; locked?: unknown }>) => void = () => {}): string {
  const lock = JSON.parse(text) as { nodes: Record<string, { inputs?: Record<string, unknown>; locked?: unknown }>; root: string };
  const nodes: Record<string, { inputs?: Record<string, unknown>; locked?: unknown }> = {};
  for (const [key, node] of Object.entries(lock.nodes)) {
    const inputs = node.inputs ? Object.fromEntries(Object.entries(node.inputs).map(([name, target]) => [name, Array.isArray(target) ? [input, ...(target as string[])] : target])) : undefined;
    nodes[key === lock.root ? input : key] = { ...node, ...(inputs ? { inputs } : {}), ...(key === lock.root ? { locked: { narHash: 'sha256-of-the-copy', path: '/tmp/copy', type: 'path' } } : {}) };
  }
  nodes.root = { inputs: { [input]: input } };
  edit(nodes);
  return JSON.stringify({ nodes, root: 'root', version: 7 });
}
const REV2 = '5d6e7f8a9b0c5d6e7f8a9b0c5d6e7f8a9b0c5d6e';

describe('parseFlakeLock', () => {
  it('lists every locked input by path, nested ones too, follows left out', () => {
    expect([...parseFlakeLock(lockText(REV1)).keys()]).toEqual(['home-manager', 'home-manager/nixpkgs', 'nixpkgs']);
    expect(rootInputNames(lockText(REV1))).toEqual(['home-manager', 'nixpkgs', 'self2']);
  });

  it('refuses what is not a lock file', () => {
    expect(() => parseFlakeLock('{')).toThrow(/not valid JSON/);
    expect(() => parseFlakeLock('[]')).toThrow(/no "nodes"/);
  });

  it('finds inputs by path, through follows', () => {
    const text = lockText(REV1);
    expect(lockHasInput(text, 'nixpkgs')).toBe(true);
    expect(lockHasInput(text, 'home-manager/nixpkgs')).toBe(true);
    expect(lockHasInput(text, 'home-manager/utils')).toBe(true);
    expect(lockHasInput(text, 'home-manager/nope')).toBe(false);
    expect(lockHasInput(text, 'nope')).toBe(false);
  });
});

describe('one reading of a lock file', () => {
  it('a root that is not a string is the node named root, for every question (Nix refuses such a lock)', () => {
    const odd = JSON.parse(lockText(REV1)) as { root: unknown };
    odd.root = 7;
    const text = JSON.stringify(odd);
    expect([...parseFlakeLock(text).keys()]).toEqual(['home-manager', 'home-manager/nixpkgs', 'nixpkgs']);
    expect(rootInputNames(text)).toEqual(['home-manager', 'nixpkgs', 'self2']);
    expect(lockHasInput(text, 'nixpkgs')).toBe(true);
    expect(lockHasInput(text, 'nope')).toBe(false);
    expect(lockPinsEvaluation(text, wrapperLock(lockText(REV1)), 'flake0')).toBe(true);
    // Not a lock file: no inputs, none found, none pinned.
    for (const notALock of ['{', '[]', 'null']) {
      expect(rootInputNames(notALock)).toEqual([]);
      expect(lockHasInput(notALock, 'nixpkgs')).toBe(false);
      expect(lockPinsEvaluation(notALock, wrapperLock(lockText(REV1)), 'flake0')).toBe(false);
      expect(lockPinsEvaluation(lockText(REV1), notALock, 'flake0')).toBe(false);
    }
  });
});

describe('input names that are properties of every object', () => {
  it('are inputs only when the lock has them (toString, constructor): bento flake update toString says no flake has it', () => {
    const text = lockText(REV1);
    for (const input of ['toString', 'constructor', 'valueOf', 'hasOwnProperty', 'home-manager/toString', 'constructor/name']) {
      expect(lockHasInput(text, input), input).toBe(false);
    }
    expect(lockPinsEvaluation(text, wrapperLock(text), 'toString')).toBe(false);
    expect(reportFlake('hosts/a', { kind: 'updated', before: text, after: text }, 'toString')).toEqual({
      line: 'hosts/a: no input named "toString" (its inputs: home-manager, nixpkgs, self2)',
      failed: false,
      hasInput: false,
    });
    // A node of that name, or an input: found as any other.
    const name: string = 'toString';
    const named = JSON.parse(text) as { nodes: Record<string, { inputs?: Record<string, unknown>; locked?: unknown }> };
    const rootInputs = named.nodes.root?.inputs as Record<string, unknown>;
    named.nodes[name] = { locked: { rev: REV2 } };
    rootInputs[name] = name;
    const withIt = JSON.stringify(named);
    expect(lockHasInput(withIt, 'toString')).toBe(true);
    expect(lockPinsEvaluation(withIt, wrapperLock(withIt), 'flake0')).toBe(true);
    expect(parseFlakeLock(withIt).get('toString')).toEqual({ rev: REV2 });
    // A root input naming a node the lock lacks, whose name every object has: not locked.
    rootInputs[name] = 'constructor';
    expect(lockPinsEvaluation(JSON.stringify(named), wrapperLock(withIt), 'flake0')).toBe(false);
  });
});

describe('lockPinsEvaluation', () => {
  it('a node locked anew from another reference to the very same attributes is not pinned: Nix reused the node only if its original is the same (and copied whether it is a flake)', () => {
    const text = lockText(REV1);
    type Nodes = Record<string, { original?: unknown; flake?: unknown }>;
    // flake.nix says github:NixOS/nixpkgs (its default branch), the lock was made from nixos-24.05: the same rev today, not tomorrow.
    const anew = wrapperLock(text, 'flake0', (nodes) => ((nodes as Nodes).nixpkgs = { ...nodes.nixpkgs, original: { owner: 'NixOS', repo: 'nixpkgs', type: 'github' } }));
    expect(lockPinsEvaluation(text, anew, 'flake0')).toBe(false);
    const noOriginal = wrapperLock(text, 'flake0', (nodes) => delete (nodes as Nodes).nixpkgs?.original);
    expect(lockPinsEvaluation(text, noOriginal, 'flake0')).toBe(false);
    // The same original in another key order is the same.
    const reordered = wrapperLock(text, 'flake0', (nodes) => ((nodes as Nodes).nixpkgs = { ...nodes.nixpkgs, original: { type: 'github', repo: 'nixpkgs', ref: 'nixos-24.05', owner: 'NixOS' } }));
    expect(lockPinsEvaluation(text, reordered, 'flake0')).toBe(true);
    const notAFlake = wrapperLock(text, 'flake0', (nodes) => ((nodes as Nodes).nixpkgs = { ...nodes.nixpkgs, flake: false }));
    expect(lockPinsEvaluation(text, notAFlake, 'flake0')).toBe(false);
  });

  it('says whether the flake\'s lock pins its inputs as Nix locked them for the evaluation: each locked alike, or following the same input', () => {
    const text = lockText(REV1);
    expect(lockPinsEvaluation(text, wrapperLock(text), 'flake0')).toBe(true);
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake3'), 'flake3')).toBe(true);
    // The same locked attributes in another order: the same lock.
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake0', (nodes) => (nodes.nixpkgs = { ...nodes.nixpkgs, locked: Object.fromEntries(Object.entries(nodes.nixpkgs?.locked as object).reverse()) })), 'flake0')).toBe(true);
    // Locked anew in memory (an input whose url was edited, the lock not updated), at the top or below.
    expect(lockPinsEvaluation(text, wrapperLock(lockText(REV2)), 'flake0')).toBe(false);
    expect(lockPinsEvaluation(text, wrapperLock(lockText(REV1, REV2)), 'flake0')).toBe(false);
    // An input flake.nix has and the lock does not; one the lock has and flake.nix no longer.
    const added = wrapperLock(text, 'flake0', (nodes) => {
      nodes.common = { locked: { narHash: 'sha256-common', path: '/srv/common', type: 'path' } };
      (nodes.flake0?.inputs as Record<string, unknown>).common = 'common';
    });
    expect(lockPinsEvaluation(text, added, 'flake0')).toBe(false);
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake0', (nodes) => delete (nodes.flake0?.inputs as Record<string, unknown>).self2), 'flake0')).toBe(false);
    // A follows changed in flake.nix: another input followed, a follows where the lock has a node, or a path outside the flake.
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake0', (nodes) => ((nodes['home-manager']?.inputs as Record<string, unknown>).utils = ['flake0', 'home-manager'])), 'flake0')).toBe(false);
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake0', (nodes) => ((nodes['home-manager']?.inputs as Record<string, unknown>).nixpkgs = ['flake0', 'nixpkgs'])), 'flake0')).toBe(false);
    expect(lockPinsEvaluation(text, wrapperLock(text, 'flake0', (nodes) => ((nodes['home-manager']?.inputs as Record<string, unknown>).utils = ['nixpkgs'])), 'flake0')).toBe(false);
    // A flake with no inputs needs no lock; one with inputs and no lock is not pinned.
    const bare = JSON.stringify({ nodes: { root: {} }, root: 'root', version: 7 });
    expect(lockPinsEvaluation(undefined, wrapperLock(bare), 'flake0')).toBe(true);
    expect(lockPinsEvaluation(bare, wrapperLock(bare), 'flake0')).toBe(true);
    expect(lockPinsEvaluation(undefined, wrapperLock(text), 'flake0')).toBe(false);
    // A node the flake's lock names and lacks, or has unlocked: as Nix found it, or not.
    const broken = JSON.parse(text) as { nodes: Record<string, Record<string, unknown>> };
    delete broken.nodes.nixpkgs?.locked;
    expect(lockPinsEvaluation(JSON.stringify(broken), wrapperLock(text), 'flake0')).toBe(false);
    // No such input in the wrapper's lock.
    expect(lockPinsEvaluation(text, wrapperLock(text), 'flake1')).toBe(false);
  });
});

describe('describing changes', () => {
  it('shows git revisions in short, nested inputs by path', () => {
    const changes = compareLocks(parseFlakeLock(lockText(REV1)), parseFlakeLock(lockText(REV2, REV2)));
    expect(changes.map(describeLockChange)).toEqual(['home-manager/nixpkgs aaaaaaa → 5d6e7f8', 'nixpkgs 1a2b3c4 → 5d6e7f8']);
  });

  it('shows additions, removals, and relocks of the same content', () => {
    const before = new Map([
      ['old', { narHash: 'sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=' }],
      ['dep', { narHash: 'sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=', lastModified: 1 }],
    ]);
    const after = new Map([
      ['dep', { narHash: 'sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=', lastModified: 2 }],
      ['new', { narHash: 'sha256-4/dryNSsO5m950L20f49+ME16cIH2L6VAF4E+s/DMY0=' }],
    ]);
    expect(compareLocks(before, after).map(describeLockChange)).toEqual([
      'dep 76e781b (same content; lastModified changed)',
      'new (new) e3f76bc',
      'old removed',
    ]);
    expect(compareLocks(after, after)).toEqual([]);
  });

  it('prints narHashes in hexadecimal', () => {
    expect(shortNarHash('sha256-dueBuMfzoCnY4NMmenc4Kdh0X0LsJpWnzQYzBGvS0/U=')).toBe('76e781b');
    expect(shortNarHash('sha256:0abcdefgh')).toBe('sha256:');
  });
});

describe('reportFlake', () => {
  it('says up to date, no inputs, or what changed', () => {
    const text = lockText(REV1);
    expect(reportFlake('hosts/a', { kind: 'updated', before: text, after: text })).toEqual({ line: 'hosts/a: up to date', failed: false, hasInput: true });
    expect(reportFlake('hosts/a', { kind: 'updated', before: undefined, after: undefined }).line).toBe('hosts/a: no inputs');
    expect(reportFlake('hosts/a', { kind: 'updated', before: text, after: lockText(REV2) }).line).toBe('hosts/a: nixpkgs 1a2b3c4 → 5d6e7f8');
    expect(reportFlake('hosts/a', { kind: 'updated', before: '{', after: text }).line).toMatch(/^hosts\/a: home-manager \(new\) bbbbbbb, /);
  });

  it('reports an input the flake does not have, and failures', () => {
    const text = lockText(REV1);
    expect(reportFlake('hosts/a', { kind: 'updated', before: text, after: text }, 'agenix')).toEqual({
      line: 'hosts/a: no input named "agenix" (its inputs: home-manager, nixpkgs, self2)',
      failed: false,
      hasInput: false,
    });
    expect(reportFlake('hosts/a', { kind: 'failed', error: 'error: boom\n  at line 3' })).toEqual({
      error: 'hosts/a: update failed:\n  | error: boom\n  |   at line 3',
      failed: true,
      hasInput: true,
    });
    expect(reportFlake('hosts/a', { kind: 'updated', before: text, after: '{' }).failed).toBe(true);
  });
});

describe('flakeUpdateArgs', () => {
  it('uses the Nix 2.8 commands on a path: reference', () => {
    expect(flakeUpdateArgs('/fleet/hosts/a')).toEqual(['flake', 'update', 'path:/fleet/hosts/a']);
    expect(flakeUpdateArgs('/fleet/hosts/a', 'nixpkgs')).toEqual(['flake', 'lock', '--update-input', 'nixpkgs', 'path:/fleet/hosts/a']);
  });
});

describe('findFlakes', () => {
  it('walks hosts/ recursively, sorted, skipping .git and never following links', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bento-find-flakes-'));
    try {
      const put = (file: string) => {
        mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
        writeFileSync(path.join(root, file), '{ outputs = _: { }; }\n');
      };
      put('utils/flake.nix');
      put('hosts/b/flake.nix');
      put('hosts/a/flake.nix');
      put('hosts/a/sub/flake.nix');
      put('hosts/a/.git/flake.nix');
      put('hosts/legacy/configuration.nix');
      symlinkSync('../../utils', path.join(root, 'hosts/a/utils'));
      symlinkSync('../b', path.join(root, 'hosts/a/b-again'));
      mkdirSync(path.join(root, 'hosts/linked'));
      symlinkSync('../../utils/flake.nix', path.join(root, 'hosts/linked/flake.nix'));
      expect(findFlakes(root)).toEqual({
        flakes: ['hosts/a', 'hosts/a/sub', 'hosts/b'],
        skipped: ['hosts/linked/flake.nix is a symbolic link: skipped (make it a regular file to update it)'],
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
