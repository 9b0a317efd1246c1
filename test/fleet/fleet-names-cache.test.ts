/**
 * loadFleet with deploy's cache of the flakes' system names
 * (LoadFleetOptions.namesCache): a fleet whose flakes are all known is read
 * from hosts/ with no copy and no Nix (its snapshot deferred), and every
 * kind of change to what a flake is evaluated from, or to config.sh, asks
 * Nix again, as does every load of a flake whose flake.lock does not pin its
 * inputs. Real Nix (process tier).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadFleet, releaseFleet, takeSnapshot, type Fleet } from '../../src/fleet/fleet.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';

let fleet: TestFleet | undefined;
const loaded: Fleet[] = [];
afterEach(async () => {
  for (const each of loaded.splice(0)) await releaseFleet(each);
  fleet?.cleanup();
});

/** Loads the fleet at `root` as deploy does, its names cache kept from one load to the next: whether Nix was asked, and the names. */
function namesLoader(root: string): { load: () => Promise<{ asked: boolean; names: string[] }>; cacheSize: () => number } {
  let cache = new Map<string, string[]>();
  const load = async () => {
    const each = await loadFleet(root, { snapshot: true, namesCache: () => cache });
    loaded.push(each);
    cache = each.flakeNames ?? new Map();
    return { asked: each.deferredSnapshot === undefined, names: each.systems.map((system) => system.name) };
  };
  return { load, cacheSize: () => cache.size };
}

/** A git repository (readable by the evaluator) whose names.nix lists `names`, committed on main; `commit` commits other names. */
function namesRepo(names: string[]): { repo: string; commit: (names: string[]) => void } {
  const repo = mkdtempSync(path.join(os.tmpdir(), 'bento-names-input-'));
  chmodSync(repo, 0o755); // the evaluator (as root, another user) reads it
  const git = (...args: string[]) => {
    const result = spawnSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  };
  const write = (list: string[]) => writeFileSync(path.join(repo, 'names.nix'), `[ ${list.map((name) => JSON.stringify(name)).join(' ')} ]\n`);
  git('init', '-q', '-b', 'main');
  write(names);
  git('add', 'names.nix');
  git('commit', '-q', '-m', 'names');
  return {
    repo,
    commit: (list) => {
      write(list);
      git('commit', '-q', '-a', '-m', 'names');
    },
  };
}

/** Locks the flake in `dir` as `nix flake lock` does for a user. */
function lockFlake(dir: string): void {
  const locked = spawnSync('nix', ['--extra-experimental-features', 'nix-command flakes', 'flake', 'lock', `path:${dir}`], { encoding: 'utf8', env: { ...process.env, NIX_CONFIG: 'substituters =' } });
  expect(locked.status, locked.stderr).toBe(0);
}

const FLAKE = '{ outputs = { self }: { nixosConfigurations = import ./utils/systems.nix; }; }\n';
const LOCK = '{\n  "nodes": {\n    "root": {}\n  },\n  "root": "root",\n  "version": 7\n}\n';

describe('loadFleet with a names cache', () => {
  it('an unchanged fleet is read from hosts/ without Nix nor a copy; each kind of change asks Nix again', async () => {
    fleet = makeFleet({ hosts: { h: { flakeText: FLAKE, utils: true }, plain: { nonFlake: true } }, keys: [] });
    const root = fleet.root;
    const hostDir = path.join(root, 'hosts', 'h');
    writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ alpha = {}; beta = {}; }\n');
    let cache = new Map<string, string[]>();
    /** Loads the fleet as deploy does; says whether Nix was asked (no deferred snapshot) and what the names are. */
    const load = async () => {
      const each = await loadFleet(root, { snapshot: true, namesCache: () => cache });
      loaded.push(each);
      cache = each.flakeNames ?? new Map();
      return { asked: each.deferredSnapshot === undefined, names: each.systems.map((system) => system.name), fleet: each };
    };
    expect(await load()).toMatchObject({ asked: true, names: ['alpha', 'beta', 'plain'] });
    const known = await load();
    expect(known).toMatchObject({ asked: false, names: ['alpha', 'beta', 'plain'] });
    // Read from hosts/, nothing copied: the files were listed and hashed once.
    expect(known.fleet.snapshotDir).toBeUndefined();
    expect(known.fleet.systems.map((system) => system.filesDir)).toEqual([hostDir, hostDir, path.join(root, 'hosts', 'plain')]);
    expect(known.fleet.systems[0]?.files?.map((file) => file.relative)).toEqual(['flake.nix', 'utils/common.nix', 'utils/systems.nix']);

    mkdirSync(path.join(root, 'utils2'));
    writeFileSync(path.join(root, 'utils2', 'systems.nix'), '{ gamma = {}; }\n');
    const changes: [string, () => void, string[]][] = [
      ['a file edited (through the utils link)', () => writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ alpha = {}; delta = {}; }\n'), ['alpha', 'delta']],
      ['a file added', () => writeFileSync(path.join(hostDir, 'extra.nix'), '{ }\n'), ['alpha', 'delta']],
      ['a file removed', () => unlinkSync(path.join(hostDir, 'extra.nix')), ['alpha', 'delta']],
      ['a file made executable', () => chmodSync(path.join(root, 'utils', 'common.nix'), 0o755), ['alpha', 'delta']],
      ['flake.lock written', () => writeFileSync(path.join(hostDir, 'flake.lock'), LOCK), ['alpha', 'delta']],
      ['flake.lock changed', () => writeFileSync(path.join(hostDir, 'flake.lock'), LOCK.replace(/\n\s*/g, '')), ['alpha', 'delta']],
      [
        'a link pointed elsewhere',
        () => {
          unlinkSync(path.join(hostDir, 'utils'));
          symlinkSync('../../utils2', path.join(hostDir, 'utils'));
        },
        ['gamma'],
      ],
      ['config.sh changed', () => appendFileSync(path.join(root, 'config.sh'), 'LOG_KEEP=7\n'), ['gamma']],
    ];
    for (const [what, change, names] of changes) {
      change();
      expect(await load(), `${what}: Nix is asked`).toMatchObject({ asked: true, names: [...names, 'plain'] });
      expect(await load(), `${what}: then known`).toMatchObject({ asked: false, names: [...names, 'plain'] });
    }
    // A comment in config.sh changes no value: still known.
    appendFileSync(path.join(root, 'config.sh'), '# a comment\n');
    expect(await load()).toMatchObject({ asked: false });
    // The cache holds the fleet's one flake, nothing of the earlier states.
    expect(cache.size).toBe(1);
  });

  it('a flake whose names come from an input its flake.lock does not pin (none, or its url edited since) asks Nix every time, until a lock pins it', async () => {
    // The input lives outside hosts/: nothing bento hashes changes when it does.
    const common = mkdtempSync(path.join(os.tmpdir(), 'bento-names-input-'));
    const other = mkdtempSync(path.join(os.tmpdir(), 'bento-names-input-'));
    chmodSync(common, 0o755); // the evaluator (nobody, as root) reads it
    chmodSync(other, 0o755);
    try {
      writeFileSync(path.join(common, 'names.nix'), '[ "alpha" ]\n');
      const flake = `{ inputs.common = { url = ${JSON.stringify(`path:${common}`)}; flake = false; }; outputs = { self, common }: { nixosConfigurations = builtins.listToAttrs (map (name: { inherit name; value = { }; }) (import "\${common}/names.nix")); }; }\n`;
      fleet = makeFleet({ hosts: { h: { flakeText: flake } }, keys: [] });
      const root = fleet.root;
      const { load, cacheSize } = namesLoader(root);
      const hostDir = path.join(root, 'hosts', 'h');
      /** Not pinned: every load asks Nix, which finds the input as it is now; then locked: remembered. */
      const askedUntilLocked = async (namesFile: string, before: string[], after: string[]) => {
        expect(await load()).toEqual({ asked: true, names: before });
        expect(cacheSize()).toBe(0);
        writeFileSync(namesFile, `[ ${after.map((name) => JSON.stringify(name)).join(' ')} ]\n`);
        // What Nix finds now, with nothing in hosts/ changed.
        expect(await load()).toEqual({ asked: true, names: after });
        // Pinned by a lock, as `nix flake lock` writes it: remembered.
        lockFlake(hostDir);
        expect(await load()).toEqual({ asked: true, names: after });
        expect(cacheSize()).toBe(1);
        expect(await load()).toEqual({ asked: false, names: after });
      };
      await askedUntilLocked(path.join(common, 'names.nix'), ['alpha'], ['alpha', 'beta']);

      // The input's url edited in flake.nix, the lock not updated: Nix locks
      // the new one in memory on every evaluation, whatever the file pins.
      writeFileSync(path.join(other, 'names.nix'), '[ "gamma" ]\n');
      writeFileSync(path.join(hostDir, 'flake.nix'), flake.replace(JSON.stringify(`path:${common}`), JSON.stringify(`path:${other}`)));
      await askedUntilLocked(path.join(other, 'names.nix'), ['gamma'], ['delta', 'gamma']);
    } finally {
      rmSync(common, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('a git input whose url was edited to a reference that locks to the very same attributes (its branch dropped: HEAD, that branch) is not remembered: Nix follows HEAD from then on', async () => {
    const { repo, commit } = namesRepo(['alpha']);
    try {
      const url = `git+file://${repo}`;
      const flake = (ref: string) => `{ inputs.repo = { url = ${JSON.stringify(url + ref)}; flake = false; }; outputs = { self, repo }: { nixosConfigurations = builtins.listToAttrs (map (name: { inherit name; value = { }; }) (import "\${repo}/names.nix")); }; }\n`;
      fleet = makeFleet({ hosts: { h: { flakeText: flake('?ref=main') } }, keys: [] });
      const root = fleet.root;
      lockFlake(path.join(root, 'hosts', 'h'));
      const { load, cacheSize } = namesLoader(root);
      expect(await load()).toEqual({ asked: true, names: ['alpha'] });
      expect(cacheSize()).toBe(1);
      // `?ref=main` dropped, the lock not updated: Nix locks the input anew
      // on every evaluation, to what HEAD is then (today: the same commit).
      writeFileSync(path.join(root, 'hosts', 'h', 'flake.nix'), flake(''));
      expect(await load()).toEqual({ asked: true, names: ['alpha'] });
      expect(cacheSize()).toBe(0);
      commit(['alpha', 'beta']);
      expect(await load()).toEqual({ asked: true, names: ['alpha', 'beta'] });
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it('an input of an input given by url in flake.nix (not follows) is not remembered, even just locked: Nix 2.8 locks it anew on every evaluation', async () => {
    const { repo, commit } = namesRepo(['alpha']);
    const dep = mkdtempSync(path.join(os.tmpdir(), 'bento-names-input-'));
    chmodSync(dep, 0o755); // the evaluator (as root, another user) reads it
    try {
      writeFileSync(path.join(dep, 'flake.nix'), `{ inputs.b = { url = ${JSON.stringify(`path:${repo}`)}; flake = false; }; outputs = { self, b }: { names = import "\${b}/names.nix"; }; }\n`);
      const flake = `{ inputs.a.url = ${JSON.stringify(`path:${dep}`)}; inputs.a.inputs.b.url = ${JSON.stringify(`git+file://${repo}`)}; outputs = { self, a }: { nixosConfigurations = builtins.listToAttrs (map (name: { inherit name; value = { }; }) a.names); }; }\n`;
      fleet = makeFleet({ hosts: { h: { flakeText: flake } }, keys: [] });
      const root = fleet.root;
      lockFlake(path.join(root, 'hosts', 'h'));
      const { load, cacheSize } = namesLoader(root);
      expect(await load()).toEqual({ asked: true, names: ['alpha'] });
      expect(cacheSize()).toBe(0);
      // A commit on the branch, nothing in hosts/ changed: Nix evaluates it.
      commit(['alpha', 'beta']);
      expect(await load()).toEqual({ asked: true, names: ['alpha', 'beta'] });
    } finally {
      rmSync(repo, { recursive: true, force: true });
      rmSync(dep, { recursive: true, force: true });
    }
  });

  it('takeSnapshot copies what must be built, and says when it is no longer what was loaded', async () => {
    fleet = makeFleet({ hosts: { h: { flakeText: FLAKE, utils: true }, other: { flakeText: FLAKE, utils: true } }, keys: [] });
    const root = fleet.root;
    writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ one = {}; }\n');
    writeFileSync(path.join(root, 'hosts', 'other', 'flake.nix'), FLAKE.replace('./utils/systems.nix', './two.nix'));
    writeFileSync(path.join(root, 'hosts', 'other', 'two.nix'), '{ two = {}; }\n');
    const first = await loadFleet(root, { snapshot: true, namesCache: () => new Map() });
    loaded.push(first);
    const cache = first.flakeNames as Map<string, string[]>;

    const same = await loadFleet(root, { snapshot: true, namesCache: () => cache });
    loaded.push(same);
    expect(await takeSnapshot(same, [same.systems[0]!])).toBe(true);
    const [one, two] = same.systems;
    expect(one?.filesDir).toBe(path.join(same.snapshotDir as string, 'h'));
    expect(existsSync(path.join(one!.filesDir, 'utils', 'systems.nix'))).toBe(true);
    expect(one?.files?.every((file) => file.source.startsWith(`${same.snapshotDir}/`))).toBe(true);
    // Only what was asked for is copied.
    expect(two?.filesDir).toBe(path.join(root, 'hosts', 'other'));

    const changed = await loadFleet(root, { snapshot: true, namesCache: () => cache });
    loaded.push(changed);
    writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ one = {}; three = {}; }\n');
    expect(await takeSnapshot(changed, changed.systems)).toBe(false);

    writeFileSync(path.join(root, 'utils', 'systems.nix'), '{ one = {}; }\n');
    const gone = await loadFleet(root, { snapshot: true, namesCache: () => cache });
    loaded.push(gone);
    expect(gone.deferredSnapshot).toBeDefined();
    rmSync(path.join(root, 'hosts', 'other', 'two.nix'));
    expect(await takeSnapshot(gone, gone.systems)).toBe(false);
  });
});
