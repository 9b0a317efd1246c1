/**
 * Every flake's systems in one evaluation and one build (buildFlakesSystems,
 * src/nix/build.ts), with real Nix: the store path is the one the machine
 * builds from its git work tree, and failures land on their systems.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFlakesSystems, toplevelAttribute, toplevelsFlakeText, type BuildOutcome, type FlakeSystems } from '../../src/nix/build.js';
import { addEverythingToGitEach } from '../../src/nix/flake-tree.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-build-flakes-'));
// As root the flakes are evaluated by an unprivileged user (unprivileged.ts), who must read them.
chmodSync(scratch, 0o755);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const NEUTRAL_GIT = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
const NIX = ['--extra-experimental-features', 'nix-command flakes'];

/** A toplevel that is a tiny derivation, fresh for each nonce; `script` is its builder's. */
function toplevel(name: string, script: string, extra = ''): string {
  return `${JSON.stringify(name)}.config.system.build.toplevel = builtins.derivation { name = "nixos-system-${name}"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = builtins.readFile ./nonce; ${extra} args = [ "-c" ${JSON.stringify(script)} ]; };`;
}

/**
 * A flake whose system records what the flake sees of itself: its store
 * path, lastModified and lastModifiedDate, sourceInfo, its rev (or
 * "dirty"), and the files of its source, which a nested .gitignore and a
 * top one thin out.
 */
const SELF_AWARE = `{
  outputs = { self }: {
    nixosConfigurations = {
      ${toplevel('seer', 'echo "$info" > $out', `info = builtins.toJSON { out = self.outPath; lastModified = self.lastModified; lastModifiedDate = self.lastModifiedDate; sourceInfo = self.sourceInfo; rev = self.rev or "dirty"; files = builtins.attrNames (builtins.readDir self); sub = builtins.attrNames (builtins.readDir ./sub); };`)}
      ${toplevel('breaks', 'echo broken-on-purpose >&2; exit 3')}
    };
  };
}
`;

function simple(names: string[], broken?: string): string {
  const systems = names.map((name) => (name === broken ? `${JSON.stringify(name)} = throw "bad-eval-on-purpose";` : toplevel(name, `echo ${name} > $out`)));
  return `{ outputs = { self }: { nixosConfigurations = { ${systems.join(' ')} }; }; }\n`;
}

function writeTree(dir: string, files: Record<string, string>): string {
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), content);
  }
  return dir;
}

function selfAwareFiles(nonce: string): Record<string, string> {
  return {
    'flake.nix': SELF_AWARE,
    nonce,
    '.gitignore': '/ignored.txt\n',
    'ignored.txt': 'left out by the top .gitignore\n',
    'sub/.gitignore': '*.key\n',
    'sub/a.key': 'left out by the nested .gitignore\n',
    'sub/b.nix': '{ }\n',
  };
}

/** What the machine does: `git init` (git's own template), `git add -A`, then `nixos-rebuild --flake DIR#NAME` builds this. */
function buildAsTheMachine(dir: string, name: string): string {
  for (const args of [['init', '-q'], ['add', '-A']]) expect(spawnSync('git', args, { cwd: dir, env: NEUTRAL_GIT, encoding: 'utf8' }).status).toBe(0);
  const built = spawnSync('nix', [...NIX, 'build', '--json', '--no-link', '--no-write-lock-file', `git+file://${dir}#${toplevelAttribute(name)}`], { encoding: 'utf8' });
  expect(built.stderr).not.toMatch(/^error/m);
  return (JSON.parse(built.stdout) as [{ outputs: { out: string } }])[0].outputs.out;
}

/** Staging copies as bento makes them (addEverythingToGitEach), each flake with the systems to build. */
async function staged(label: string, trees: Array<{ files: Record<string, string>; names: string[] }>): Promise<FlakeSystems[]> {
  const root = mkdtempSync(path.join(scratch, `${label}-`));
  chmodSync(root, 0o755);
  const flakes = trees.map(({ files, names }, index) => ({ dir: writeTree(path.join(root, `flake${index}`), files), names }));
  await addEverythingToGitEach(
    flakes.map((flake) => flake.dir),
    2,
  );
  return flakes;
}

describe('toplevelsFlakeText', () => {
  it("makes each flake a git+file: input and lists each system's derivation and output; Nix parses it", () => {
    const text = toplevelsFlakeText([
      { dir: '/tmp/bento-build-1-a/laptop-x', names: ['laptop'] },
      { dir: '/tmp/bento-build-1-a/web-y', names: ['web1', 'web2'] },
    ]);
    expect(text).toContain('  inputs.flake0.url = "git+file:///tmp/bento-build-1-a/laptop-x";\n  inputs.flake1.url = "git+file:///tmp/bento-build-1-a/web-y";\n');
    expect(text).toContain('{ flake = inputs.flake1; names = [ "web1" "web2" ]; }');
    expect(text).toContain('[ toplevel.drvPath toplevel.outPath ]');
    const parsed = spawnSync('nix-instantiate', ['--parse', '-E', text], { encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    expect(parsed.status).toBe(0);
  });
});

describe('buildFlakesSystems', () => {
  it("builds the store path the machine builds from its git work tree (self, lastModified, sourceInfo, rev, .gitignore files); each failure lands on its system with Nix's message", async () => {
    const nonce = randomBytes(8).toString('hex');
    const reference = writeTree(path.join(mkdtempSync(path.join(scratch, 'machine-')), 'var-bento'), selfAwareFiles(nonce));
    const expected = buildAsTheMachine(reference, 'seer');
    const seen = JSON.parse(readFileSync(expected, 'utf8')) as { files: string[]; sub: string[]; rev: string; lastModified: number };
    // The flake saw what git tracks, not the ignored files: the comparison below is about them.
    expect(seen.files.sort()).toEqual(['.gitignore', 'flake.nix', 'nonce', 'sub']);
    expect(seen.sub.sort()).toEqual(['.gitignore', 'b.nix']);
    expect(seen.rev).toBe('dirty');

    // Six flakes: the group fails to evaluate (the last flake throws), is split, and the half at fault is built flake by flake.
    const flakes = await staged('mixed', [
      { files: selfAwareFiles(nonce), names: ['seer', 'breaks'] },
      ...['c', 'd', 'e', 'f'].map((name) => ({ files: { 'flake.nix': simple([name]), nonce }, names: [name] })),
      { files: { 'flake.nix': simple(['g1', 'g2'], 'g1'), nonce }, names: ['g1', 'g2'] },
    ]);
    const reported: number[] = [];
    const outcomes = await buildFlakesSystems(flakes, { jobs: 2, onFlake: (index) => reported.push(index) });
    expect(reported.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const byName = new Map<string, BuildOutcome>(outcomes.flatMap((map) => [...map.entries()]));

    expect(byName.get('seer')).toMatchObject({ ok: true, storePath: expected });
    const breaks = byName.get('breaks') as BuildOutcome & { ok: false };
    expect(breaks.ok).toBe(false);
    expect(breaks.error).toMatch(/builder for '.*-nixos-system-breaks\.drv' failed/);
    expect(breaks.log).toContain('broken-on-purpose');
    const g1 = byName.get('g1') as BuildOutcome & { ok: false };
    expect(g1.ok).toBe(false);
    expect(g1.error).toContain('bad-eval-on-purpose');
    for (const name of ['c', 'd', 'e', 'f', 'g2']) {
      const outcome = byName.get(name) as BuildOutcome & { ok: true };
      expect(outcome.ok).toBe(true);
      expect(readFileSync(outcome.storePath, 'utf8')).toBe(`${name}\n`);
    }
  });

  it('many flakes are shared among `jobs` evaluations side by side; a failure in one share still lands on its flake and system', async () => {
    const nonce = randomBytes(8).toString('hex');
    // 40 one-system flakes, two evaluations of 20: the 7th throws while evaluated, the 31st fails to build.
    const names = Array.from({ length: 40 }, (_, index) => `m${String(index).padStart(2, '0')}`);
    const flakes = await staged(
      'shared',
      names.map((name, index) => ({
        files: { 'flake.nix': index === 30 ? `{ outputs = { self }: { nixosConfigurations = { ${toplevel(name, 'exit 4')} }; }; }\n` : simple([name], index === 6 ? name : undefined), nonce },
        names: [name],
      })),
    );
    const reported: number[] = [];
    const outcomes = await buildFlakesSystems(flakes, { jobs: 2, onFlake: (index) => reported.push(index) });
    expect(reported.sort((a, b) => a - b)).toEqual(names.map((_, index) => index));
    outcomes.forEach((map, index) => {
      const name = names[index] as string;
      const outcome = map.get(name) as BuildOutcome;
      if (index === 6) expect(outcome).toMatchObject({ ok: false, error: expect.stringContaining('bad-eval-on-purpose') });
      else if (index === 30) expect(outcome).toMatchObject({ ok: false, error: expect.stringMatching(/builder for '.*-nixos-system-m30\.drv' failed/) });
      else expect(readFileSync((outcome as BuildOutcome & { ok: true }).storePath, 'utf8')).toBe(`${name}\n`);
    });
  });

  it("32 systems sharing one dependency, split between two nix builds that both need it at once: built, every system is built; failing, every system fails naming the dependency's builder", async () => {
    const nonce = randomBytes(8).toString('hex');
    // The same derivation in every flake (nothing of the flake's own in it), needed by both builds at once; its builder sleeps so that
    // one build finds it locked by the other (Nix 2.8 then looks again every build-poll-interval: built, it is valid; failed, it builds it too).
    // Failing, it is another derivation (broken = "yes"), so that the first run's output does not make it valid; each time
    // it is built it says so in `counter` (a file its build user may write): the failure must not be built again per system.
    const counterDir = mkdtempSync(path.join(os.tmpdir(), 'bento-shared-dep-'));
    chmodSync(counterDir, 0o777);
    const counter = path.join(counterDir, 'builds');
    const dependency = (broken: boolean) =>
      `builtins.derivation { name = "bento-shared-dep"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = builtins.readFile ./nonce; ${broken ? `broken = "yes"; counter = ${JSON.stringify(counter)}; ` : ''}args = [ "-c" ${JSON.stringify(broken ? 'echo built >> "$counter"; sleep 1; echo shared-dep-broken-on-purpose >&2; exit 5' : 'sleep 1; echo "shared $nonce" > $out')} ]; }`;
    // 32 systems (two builds of 16 with jobs: 2, DERIVATIONS_PER_BUILDER), 8 to a flake: the dependency is shared within flakes and across them.
    const fleet = async (label: string, broken: boolean) => {
      const groups = Array.from({ length: 4 }, (_, group) => Array.from({ length: 8 }, (_, index) => `${label}${group}${index}`));
      const flakeText = (names: string[]) =>
        `{ outputs = { self }: let dep = ${dependency(broken)}; in { nixosConfigurations = { ${names.map((name) => toplevel(name, `read -r shared < $dep; echo "${name} $shared" > $out`, 'inherit dep;')).join(' ')} }; }; }\n`;
      const flakes = await staged(label, groups.map((names) => ({ files: { 'flake.nix': flakeText(names), nonce }, names })));
      const reported: number[] = [];
      const outcomes = await buildFlakesSystems(flakes, { jobs: 2, onFlake: (index) => reported.push(index) });
      expect(reported.sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
      const names = groups.flat();
      const byName = new Map<string, BuildOutcome>(outcomes.flatMap((map) => [...map.entries()]));
      expect([...byName.keys()].sort()).toEqual([...names].sort());
      return { names, byName };
    };

    const built = await fleet('s', false);
    const paths = new Set<string>();
    for (const name of built.names) {
      const outcome = built.byName.get(name) as BuildOutcome & { ok: true };
      expect(outcome).toMatchObject({ ok: true, storePath: expect.stringMatching(new RegExp(`^/nix/store/[a-z0-9]{32}-nixos-system-${name}$`)) });
      // Built (a share whose build were lost would leave it missing), by its own builder, after the dependency.
      expect(readFileSync(outcome.storePath, 'utf8')).toBe(`${name} shared ${nonce}\n`);
      // The log is both builds' output: each system's derivation is named in it, whichever build had it.
      expect(outcome.log).toContain(`-nixos-system-${name}.drv`);
      paths.add(outcome.storePath);
    }
    expect(paths.size).toBe(32);

    try {
      const failed = await fleet('f', true);
      for (const name of failed.names) {
        const outcome = failed.byName.get(name) as BuildOutcome & { ok: false };
        expect(outcome.ok).toBe(false);
        expect(outcome.error).toMatch(/builder for '\/nix\/store\/[a-z0-9]{32}-bento-shared-dep\.drv' failed/);
        expect(outcome.error).toContain('shared-dep-broken-on-purpose');
        expect(outcome.log).toContain('shared-dep-broken-on-purpose');
        // What failed it, not both builds' whole output (deploy shows each failed system's log).
        expect(outcome.log).not.toContain("building '");
      }
      // Once by each of the two builds that needed it (Nix does not remember a failure), not once more per system built again alone (34).
      expect(readFileSync(counter, 'utf8').split('\n').filter((line) => line === 'built').length).toBeLessThanOrEqual(2);
    } finally {
      rmSync(counterDir, { recursive: true, force: true });
    }
  }, 240_000);

  it("systems whose own builders fail in one build: each gets its own builder's message, the one Nix ends with and the others built again alone from their derivations", async () => {
    const nonce = randomBytes(8).toString('hex');
    const names = ['own1', 'own2', 'own3', 'fine'];
    const systems = names.map((name, index) => toplevel(name, name === 'fine' ? `echo ${name} > $out` : `echo ${name}-broken-on-purpose >&2; exit ${index + 3}`));
    // Each evaluation of the flake says so: a system built again alone is built from its derivation, not evaluated again.
    const flakes = await staged('own', [{ files: { 'flake.nix': `{ outputs = { self }: { nixosConfigurations = builtins.trace "bento-flake-evaluated" { ${systems.join(' ')} }; }; }\n`, nonce }, names }]);
    const [outcomes] = await buildFlakesSystems(flakes, { jobs: 1 });
    names.forEach((name, index) => {
      const outcome = outcomes?.get(name) as BuildOutcome;
      if (name === 'fine') expect(readFileSync((outcome as BuildOutcome & { ok: true }).storePath, 'utf8')).toBe('fine\n');
      else {
        // Nix 2.8 names one of them in the error it ends with; the others are not in its output at all.
        expect(outcome).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`builder for '/nix/store/[a-z0-9]{32}-nixos-system-${name}\\.drv' failed with exit code ${index + 3}`)) });
        expect(outcome.log).toContain(`${name}-broken-on-purpose`);
        expect(outcome.log).not.toContain('bento-flake-evaluated');
      }
    });
  });

  it('evaluates only (NOLOCALBUILD): the same store path, not built', async () => {
    const nonce = randomBytes(8).toString('hex');
    const flakes = await staged('evaluate', [{ files: selfAwareFiles(nonce), names: ['seer'] }]);
    const evaluated = (await buildFlakesSystems(flakes, { jobs: 1, evaluateOnly: true }))[0]?.get('seer') as BuildOutcome & { ok: true };
    expect(evaluated.ok).toBe(true);
    expect(existsSync(evaluated.storePath)).toBe(false);
    const reference = writeTree(path.join(mkdtempSync(path.join(scratch, 'machine-')), 'var-bento'), selfAwareFiles(nonce));
    expect(buildAsTheMachine(reference, 'seer')).toBe(evaluated.storePath);
  });
});
