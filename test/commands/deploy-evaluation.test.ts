/**
 * Evaluating fleet code never has more rights than the fleet writer (issue
 * 19, C3): a configuration under hosts/ that tries to read the server's
 * root-only files — the prebuilt signing key, /etc/shadow — is refused with a
 * message naming the system (or flake) and the file, nothing of the secret
 * reaches the Nix store or a chroot, and the rest of the fleet is handled.
 * Whole processes, real Nix 2.8, as root (as deploy runs).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { bento } from '../helpers/cli.js';
import { flakeText, makeFleet, testKey, type TestFleet } from '../helpers/fleet.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';
import { APPLY_STUBS_DIR, isRoot } from '../helpers/shell.js';

const suite = useTestServer();
const { n } = suite;

/** The server's signing key, made as bento makes it (nix-store --generate-binary-cache-key): root's alone. */
let keyDir: string;
let keyFile: string;
let key: string;

beforeAll(() => {
  if (!isRoot) return;
  keyDir = mkdtempSync(path.join(os.tmpdir(), 'bento-eval-key-'));
  suite.later(() => rmSync(keyDir, { recursive: true, force: true }));
  keyFile = path.join(keyDir, 'signing-key');
  execFileSync('nix-store', ['--generate-binary-cache-key', `bento-test-${path.basename(keyDir).slice(-6)}`, keyFile, `${keyFile}.pub`]);
  chmodSync(keyFile, 0o600);
  key = readFileSync(keyFile, 'utf8');
});

/** Nix, turning the key into a valid store path name: what a leaking configuration puts in its system's name. */
const SAFE_KEY = (file: string) => `builtins.replaceStrings [ ":" "/" "\\n" ] [ "." "_" "" ] (builtins.readFile ${file})`;
const safeKey = () => key.replace(/:/g, '.').replace(/\//g, '_').replace(/\n/g, '');

function newFleet(hosts: Parameters<typeof makeFleet>[0]['hosts']): TestFleet {
  // A prebuilt system: bento itself loads the signing key of SIGNING_KEY.
  const fleet = makeFleet({ config: `CHROOT_DIR=${suite.server.chrootDir}\nREMOTE_IP=127.0.0.1\nSIGNING_KEY=${keyFile}\n`, hosts: { ...hosts, pre: { flake: [n('pre')], files: { PREBUILT: '' } } } });
  suite.later(fleet.cleanup);
  suite.server.addUsers([n('pre')]);
  return fleet;
}

function run(fleet: TestFleet, args: string[] = ['deploy']) {
  return bento(args, { env: { BENTO_DIR: fleet.root, ...NIX_ENV } });
}

function states(): Record<string, string> {
  const file = path.join(suite.server.chrootDir, 'states.txt');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return Object.fromEntries(text.trim().split('\n').filter(Boolean).map((line) => line.split('=') as [string, string]));
}

/**
 * Whether the Nix store (world-readable) holds the key: a store path named
 * after it, a file of it (builtins.toFile), or a copy of the key's
 * directory (a fetched `path:` input, named `source`).
 */
function storeHoldsKey(): string | undefined {
  for (const entry of readdirSync('/nix/store')) {
    const full = path.join('/nix/store', entry);
    if (entry.includes(safeKey())) return full;
    if (entry.endsWith('-leak-file') && readFileSync(full, 'utf8') === key) return full;
    if (entry.endsWith('-source') && lstatSync(full).isDirectory() && existsSync(path.join(full, 'signing-key'))) {
      if (readFileSync(path.join(full, 'signing-key'), 'utf8') === key) return full;
    }
  }
  return undefined;
}

/** Whether any file published in CHROOT_DIR holds the key (grep exits 0 when it finds it). */
function chrootHoldsKey(): boolean {
  return spawnSync('grep', ['-rqF', '--', safeKey(), suite.server.chrootDir]).status === 0;
}

/** The first deploy's checks: refused, naming `what` and the key file; nothing of it anywhere; the others published. */
function expectRefused(output: string, what: string) {
  expect(output).toContain(what);
  expect(output).toContain(keyFile);
  expect(output).not.toContain(safeKey());
  expect(output).not.toContain(key.trim());
  expect(storeHoldsKey()).toBeUndefined();
  expect(chrootHoldsKey()).toBe(false);
}

describe.skipIf(!isRoot)('a configuration.nix reading the signing key', () => {
  it('deploy: its build fails, naming the system and the file Nix refused; nothing of it is stored or published; the rest of the fleet is', () => {
    const fleet = newFleet({ [n('leak')]: { nonFlake: true }, [n('fine')]: { nonFlake: true } });
    suite.server.addUsers([n('leak'), n('fine')]);
    writeFileSync(path.join(fleet.root, 'hosts', n('leak'), 'configuration.nix'), `{ ... }: { networking.hostName = "leak-\${${SAFE_KEY(keyFile)}}"; }\n`);
    const deploy = run(fleet);
    expect(deploy.status, deploy.stderr).toBe(1);
    expect(deploy.stdout).toMatch(new RegExp(`FAILED  ${n('leak')} `));
    expect(deploy.stderr).toContain(`${n('leak')}: build failed: error: access to absolute path '${keyFile}' is forbidden`);
    expectRefused(deploy.stdout + deploy.stderr, n('leak'));
    expect(deploy.stderr).toContain('deploy: 2 published, 0 unchanged, 1 failed');
    expect(existsSync(path.join(suite.server.chrootDir, n('leak'), 'config'))).toBe(false);
    expect(readFileSync(path.join(suite.server.chrootDir, n('fine'), 'config', 'configuration.nix'), 'utf8')).toContain(n('fine'));
  });

  it('bento build and dry-build (NOLOCALBUILD evaluates the same way) refuse it too', () => {
    const fleet = newFleet({ [n('leak2')]: { nonFlake: true } });
    writeFileSync(path.join(fleet.root, 'hosts', n('leak2'), 'configuration.nix'), `{ ... }: { networking.hostName = "leak-\${${SAFE_KEY(keyFile)}}"; }\n`);
    for (const args of [['build', '--name', n('leak2')], ['build', 'dry-build', '--name', n('leak2')]]) {
      const build = run(fleet, args);
      expect(build.status, args.join(' ')).toBe(1);
      expect(build.stdout).toMatch(new RegExp(`FAILED  ${n('leak2')} `));
      expectRefused(build.stdout + build.stderr, n('leak2'));
    }
  });

  it('/etc/shadow and an import of a file outside the host directory are refused the same way; the host directory and NIX_PATH stay readable', () => {
    const fleet = newFleet({ [n('shadow')]: { nonFlake: true }, [n('imports')]: { nonFlake: true, files: { 'sub/name.nix': `"${n('imports')}"\n` } } });
    writeFileSync(path.join(fleet.root, 'hosts', n('shadow'), 'configuration.nix'), `{ ... }: { networking.hostName = builtins.hashString "sha256" (builtins.readFile /etc/shadow); }\n`);
    // The host's own files (a subdirectory) and <nixpkgs> from NIX_PATH are what a configuration normally reads.
    writeFileSync(path.join(fleet.root, 'hosts', n('imports'), 'configuration.nix'), `{ ... }: { networking.hostName = builtins.seq (builtins.pathExists <nixpkgs/nixos>) (import ./sub/name.nix); }\n`);
    const build = run(fleet, ['build']);
    expect(build.status).toBe(1);
    expect(build.stdout).toMatch(new RegExp(`FAILED  ${n('shadow')} `));
    expect(build.stdout).toContain("access to absolute path '/etc/shadow' is forbidden");
    expect(build.stdout).toMatch(new RegExp(`ok {6}${n('imports')} +[0-9.]+s {2}[a-z0-9]{8}…-nixos-system-${n('imports')}-24\\.05`));
  });
});

describe.skipIf(!isRoot)('what a configuration.nix may read', () => {
  it('NIX_PATH as nix-channel makes it (a link to a profile whose links lead into the store), named or not, still builds', () => {
    const offline = execFileSync('nix-store', ['--add', path.join(PACKAGE_ROOT, 'example', 'offline-nixpkgs')], { encoding: 'utf8' }).trim();
    // A profile of channels: a store path of links to the channels, which it references.
    const profile = execFileSync(
      'nix-build',
      ['--no-out-link', '-E', `derivation { name = "user-environment"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nixpkgs = builtins.storePath ${offline}; args = [ "-c" "mkdir $out && ln -s $nixpkgs $out/nixpkgs" ]; }`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim();
    const links = mkdtempSync(path.join(os.tmpdir(), 'bento-channels-'));
    suite.later(() => rmSync(links, { recursive: true, force: true }));
    symlinkSync(profile, path.join(links, 'channels'));
    const fleet = newFleet({ [n('chan')]: { nonFlake: true } });
    for (const nixPath of [path.join(links, 'channels'), `nixpkgs=${path.join(links, 'channels', 'nixpkgs')}`]) {
      const build = bento(['build', '--name', n('chan')], { env: { BENTO_DIR: fleet.root, NIX_PATH: nixPath } });
      expect(build.stdout, nixPath).toMatch(new RegExp(`ok {6}${n('chan')} +[0-9.]+s {2}[a-z0-9]{8}…-nixos-system-${n('chan')}-24\\.05`));
      expect(build.status, build.stdout + build.stderr).toBe(0);
    }
  });
});

describe.skipIf(!isRoot)('a NIX_PATH entry only root may read', () => {
  it('fails the configuration.nix systems, naming the entry: the unprivileged evaluator reads the search path', () => {
    const hidden = mkdtempSync(path.join(os.tmpdir(), 'bento-hidden-nixpkgs-'));
    suite.later(() => rmSync(hidden, { recursive: true, force: true }));
    execFileSync('cp', ['-r', path.join(PACKAGE_ROOT, 'example', 'offline-nixpkgs'), path.join(hidden, 'nixpkgs')]);
    const fleet = newFleet({ [n('hidden')]: { nonFlake: true } });
    const build = bento(['build', '--name', n('hidden')], { env: { BENTO_DIR: fleet.root, NIX_PATH: `nixpkgs=${path.join(hidden, 'nixpkgs')}` } });
    expect(build.status).toBe(1);
    expect(build.stdout).toMatch(new RegExp(`FAILED  ${n('hidden')} .*the Nix search path entry nixpkgs=${hidden}/nixpkgs cannot be read by the user bento-eval`));
  });
});

describe.skipIf(!isRoot)('a flake reading the signing key', () => {
  const toplevel = (name: string, nameExpr: string) =>
    `builtins.derivation { name = "nixos-system-" + ${nameExpr}; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "mkdir -p $out && echo ${name} > $out/name && echo k > $out/kernel && echo i > $out/initrd && mkdir $out/kernel-modules" ]; }`;

  it('through a path: input: the flake fails, naming it and the directory; nothing of the key is stored or published; the rest of the fleet is', () => {
    const name = n('input');
    const text = `{
  inputs.secret = { url = "path:${keyDir}"; flake = false; };
  outputs = { self, secret }: {
    nixosConfigurations.${name}.config.system.build.toplevel = ${toplevel(name, SAFE_KEY('"${secret}/signing-key"'))};
  };
}
`;
    const fleet = newFleet({ leaky: { flakeText: text }, ok: { flake: [n('ok')] } });
    suite.server.addUsers([name, n('ok')]);
    const deploy = run(fleet);
    expect(deploy.status).toBe(1);
    const output = deploy.stdout + deploy.stderr;
    expect(output).toContain('hosts/leaky/flake.nix');
    expect(output).toContain(`'${keyDir}': Permission denied`);
    expect(output).not.toContain(safeKey());
    expect(storeHoldsKey()).toBeUndefined();
    expect(chrootHoldsKey()).toBe(false);
    expect(states()[name]).toBeUndefined();
    expect(states()[n('ok')]).toMatch(new RegExp(`-nixos-system-${n('ok')}-24\\.05$`));
  });

  it('while its system names are asked: refused (pure evaluation), nothing written to the store', () => {
    const name = n('names');
    // The names of nixosConfigurations are computed from the key, writing it to the store on the way.
    const text = `{
  outputs = { self }: {
    nixosConfigurations = builtins.seq (builtins.toFile "leak-file" (builtins.readFile ${keyFile})) {
      ${name}.config.system.build.toplevel = ${toplevel(name, `"${name}"`)};
    };
  };
}
`;
    const fleet = newFleet({ names: { flakeText: text } });
    const build = run(fleet, ['build']);
    expect(build.status).toBe(1);
    expect(build.stderr).toContain('hosts/names/flake.nix');
    expect(build.stderr).toContain(`access to absolute path '${keyFile}' is forbidden in pure eval mode`);
    expect(build.stderr).not.toContain('--impure');
    expect(storeHoldsKey()).toBeUndefined();
  });

  it('through builtins.readFile in its system, or /etc/shadow: the system fails, naming the file', () => {
    const name = n('direct');
    const text = flakeText([name, n('shadowed')])
      .replace(`"nixos-system-${name}-24.05"`, `"nixos-system-" + ${SAFE_KEY(keyFile)}`)
      .replace(`"nixos-system-${n('shadowed')}-24.05"`, `"nixos-system-" + builtins.hashString "sha256" (builtins.readFile /etc/shadow)`);
    const fleet = newFleet({ direct: { flakeText: text } });
    const build = run(fleet, ['build']);
    expect(build.status).toBe(1);
    expect(build.stdout).toMatch(new RegExp(`FAILED  ${name} `));
    expect(build.stdout).toMatch(new RegExp(`FAILED  ${n('shadowed')} `));
    expectRefused(build.stdout + build.stderr, name);
    expect(build.stdout).toContain("access to absolute path '/etc/shadow' is forbidden in pure eval mode");
  });
});

describe.skipIf(!isRoot)('bento build test|switch', () => {
  it('builds the system as deploy does before anything is applied: a configuration reading the key is never applied', () => {
    const flake = flakeText([n('sw')]).replace(`"nixos-system-${n('sw')}-24.05"`, `"nixos-system-" + builtins.hashString "sha256" (builtins.readFile "\${builtins.fetchTree { type = "path"; path = "${keyDir}"; narHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }}/signing-key")`);
    const fleet = newFleet({ [n('swnf')]: { nonFlake: true }, sw: { flakeText: flake } });
    writeFileSync(path.join(fleet.root, 'hosts', n('swnf'), 'configuration.nix'), `{ ... }: { networking.hostName = "leak-\${${SAFE_KEY(keyFile)}}"; }\n`);
    const record = mkdtempSync(path.join(os.tmpdir(), 'bento-record-'));
    suite.later(() => rmSync(record, { recursive: true, force: true }));
    const env = { BENTO_DIR: fleet.root, PATH: `${APPLY_STUBS_DIR}:${process.env.PATH}`, FAKE_SERVER: record, ...NIX_ENV };
    for (const [name, refusal] of [
      [n('swnf'), `access to absolute path '${keyFile}' is forbidden in restricted mode`],
      [n('sw'), `'${keyDir}': Permission denied`],
    ]) {
      const apply = bento(['build', 'switch', '--yes', '--name', name as string], { env });
      expect(apply.status, name).toBe(1);
      expect(apply.stdout).toMatch(new RegExp(`FAILED  ${name} `));
      expect(apply.stdout).toContain(refusal);
      expect(apply.stdout).not.toContain(`switch ${name as string} on this machine:`);
      expect(existsSync(path.join(record, 'calls')), name).toBe(false);
    }
    expect(storeHoldsKey()).toBeUndefined();
  });
});

describe.skipIf(!isRoot)('bento flake-update', () => {
  it('does not lock an input it could read only as root: the flake fails with Nix\'s reason, its flake.lock is unchanged and nothing is stored', () => {
    const fleet = makeFleet({ hosts: { locked: { flakeText: `{\n  inputs.secret = { url = "path:${keyDir}"; flake = false; };\n  outputs = { self, secret }: { };\n}\n` }, plain: { flake: ['plain'] } } });
    suite.later(fleet.cleanup);
    const update = bento(['flake-update'], { env: { BENTO_DIR: fleet.root } });
    expect(update.status).toBe(1);
    expect(update.stderr).toContain('hosts/locked: update failed');
    expect(update.stderr).toContain(`'${keyDir}': Permission denied`);
    expect(existsSync(path.join(fleet.root, 'hosts', 'locked', 'flake.lock'))).toBe(false);
    expect(storeHoldsKey()).toBeUndefined();
    expect(update.stdout).toContain('hosts/plain: no inputs');
  });
});

/**
 * What Nix runs or reads for fleet code — fetchers' tools (hg, git), the
 * daemon's settings and environment — never has root's rights either (the
 * hostile round after the evaluation sandbox): each attack below published
 * or leaked a root-only secret with a plain `bento deploy` as root.
 */
describe.skipIf(!isRoot)("what Nix runs or reads for fleet code", () => {
  /** A directory anyone may write in (mode 1777): where a hook run as any user can leave its marks. */
  function openDir(prefix: string): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    chmodSync(dir, 0o1777);
    suite.later(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A directory only root may enter, holding `files`: what root alone may read. */
  function rootOnlyDir(prefix: string, files: Record<string, string>): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    suite.later(() => rmSync(dir, { recursive: true, force: true }));
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content, { mode: 0o600 });
    return dir;
  }

  /** A secret that is also a valid store path name part (so a name built from it is not refused for its characters). */
  const secretWord = () => `bentosecret${Math.random().toString(36).slice(2, 12)}`;

  /** Store entries named `<hash>-<name>` holding `secret` (a path registered although its build failed, as Nix does on a hash mismatch). */
  function storeLeaks(names: readonly string[], secret: string): string[] {
    return readdirSync('/nix/store')
      .filter((entry) => names.some((name) => entry.endsWith(`-${name}`)) || entry.includes(secret))
      .map((entry) => path.join('/nix/store', entry))
      .filter((full) => full.includes(secret) || (lstatSync(full).isFile() && readFileSync(full, 'utf8').includes(secret)));
  }

  function chrootHolds(secret: string): boolean {
    return spawnSync('grep', ['-rqF', '--', secret, suite.server.chrootDir]).status === 0;
  }

  /** An hg repository in `dir` whose .hg/hgrc runs `hook.sh` before `hg status`, as the hostile tester made it. */
  function hookedMercurialRepository(dir: string, marks: string) {
    execFileSync('hg', ['init', dir]);
    writeFileSync(path.join(dir, 'file'), 'one\n');
    execFileSync('hg', ['--cwd', dir, 'add', '-q', 'file']);
    execFileSync('hg', ['--cwd', dir, 'commit', '-q', '-u', 'tester', '-m', 'one']);
    rmSync(path.join(dir, '.hg', 'wcache'), { recursive: true, force: true });
    writeFileSync(path.join(dir, 'hook.sh'), `set -e\nid -u > ${marks}/uid\ncp ${keyFile} ${marks}/key\nchmod 644 ${marks}/key\n`);
    writeFileSync(path.join(dir, '.hg', 'hgrc'), '[hooks]\npre-status = sh ./hook.sh\n', { flag: 'a' });
  }

  /** The hook ran as root (it wrote uid 0) or copied the key: what must never happen. */
  function expectHookPowerless(marks: string) {
    const uid = existsSync(path.join(marks, 'uid')) ? readFileSync(path.join(marks, 'uid'), 'utf8').trim() : undefined;
    expect(uid, 'the hg hook ran as root').not.toBe('0');
    expect(existsSync(path.join(marks, 'key')), 'the hg hook copied the signing key').toBe(false);
  }

  it('builtins.fetchMercurial: hg never runs as root (its repository hooks would), the system fails, naming it; nothing of the key anywhere', () => {
    const name = n('hg');
    const marks = openDir('bento-eval-marks-');
    const fleet = newFleet({ [name]: { nonFlake: true }, [n('hgfine')]: { nonFlake: true } });
    suite.server.addUsers([name, n('hgfine')]);
    hookedMercurialRepository(path.join(fleet.root, 'hosts', name, 'repo'), marks);
    writeFileSync(path.join(fleet.root, 'hosts', name, 'configuration.nix'), `{ ... }: { networking.hostName = builtins.seq (builtins.fetchMercurial ./repo).outPath "${name}"; }\n`);
    // A repository without hooks is fetched as before: hg itself works for the evaluator.
    const clean = path.join(fleet.root, 'hosts', n('hgfine'), 'repo');
    hookedMercurialRepository(clean, marks);
    writeFileSync(path.join(clean, '.hg', 'hgrc'), '');
    writeFileSync(path.join(fleet.root, 'hosts', n('hgfine'), 'configuration.nix'), `{ ... }: { networking.hostName = builtins.seq (builtins.fetchMercurial ./repo).outPath "${n('hgfine')}"; }\n`);
    const deploy = run(fleet);
    expectHookPowerless(marks);
    expect(deploy.status, deploy.stdout + deploy.stderr).toBe(1);
    expect(deploy.stdout).toMatch(new RegExp(`FAILED  ${name} `));
    expect(deploy.stderr).toContain(`${name}: build failed`);
    expect(deploy.stderr).toContain('untrusted hook pre-status not executed');
    expect(storeHoldsKey()).toBeUndefined();
    expect(chrootHoldsKey()).toBe(false);
    expect(existsSync(path.join(suite.server.chrootDir, name, 'config'))).toBe(false);
    expect(deploy.stderr).toMatch(/deploy: \d+ published, \d+ unchanged, 1 failed/);
    expect(readFileSync(path.join(suite.server.chrootDir, n('hgfine'), 'config', 'configuration.nix'), 'utf8')).toContain(n('hgfine'));
  });

  it('builtins.fetchGit through a gitfile: git never reads, as root, the repository it names; the system fails, naming it; nothing of it anywhere', () => {
    const name = n('gitfile');
    const secret = secretWord();
    const repo = rootOnlyDir('bento-eval-rootgit-', {});
    execFileSync('git', ['init', '-q', '-b', 'main', repo]);
    writeFileSync(path.join(repo, 'shadow'), secret);
    execFileSync('git', ['-C', repo, 'add', 'shadow']);
    execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'one']);
    const fleet = newFleet({ [name]: { nonFlake: true, files: { 'etc-git': `gitdir: ${repo}/.git\n` } } });
    suite.server.addUsers([name]);
    writeFileSync(
      path.join(fleet.root, 'hosts', name, 'configuration.nix'),
      `{ ... }: { networking.hostName = "leak-" + builtins.readFile ((builtins.fetchGit { url = ./etc-git; ref = "main"; }) + "/shadow"); }\n`,
    );
    const deploy = run(fleet);
    const output = deploy.stdout + deploy.stderr;
    expect(output).not.toContain(secret);
    expect(storeLeaks([], secret)).toEqual([]);
    expect(readdirSync('/nix/store').filter((entry) => entry.endsWith('-source') && existsSync(path.join('/nix/store', entry, 'shadow')) && readFileSync(path.join('/nix/store', entry, 'shadow'), 'utf8') === secret)).toEqual([]);
    expect(chrootHolds(secret)).toBe(false);
    expect(deploy.status, output).toBe(1);
    expect(deploy.stdout).toMatch(new RegExp(`FAILED  ${name} `));
    expect(deploy.stderr).toContain(`${name}: build failed`);
    expect(existsSync(path.join(suite.server.chrootDir, name, 'config'))).toBe(false);
  });

  /** A fixed-output derivation whose build copies `what` into its output, for a configuration.nix and a flake: Nix registers the output on a hash mismatch. */
  const fixedOutput = (name: string, attributes: string) =>
    `derivation ({ name = "${name}"; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; } // ${attributes})`;
  /** builtin:fetchurl fetching the netrc the daemon wrote into the build directory (sandbox = false: TMPDIR/nix-build-<drv>-0). */
  const netrcFetch = (name: string) =>
    fixedOutput(name, `{ builder = "builtin:fetchurl"; system = "builtin"; url = "file:///tmp/nix-build-${name}.drv-0/netrc"; urls = [ ]; unpack = ""; executable = ""; }`);
  /** A builder that writes the daemon's variables it asks for (impureEnvVars) into its output. */
  const environmentCopy = (name: string) =>
    fixedOutput(
      name,
      `{ builder = "/bin/sh"; system = "x86_64-linux"; PATH = "/usr/bin:/bin"; impureEnvVars = [ "NIX_CONFIG" "BENTO_EVAL_SECRET" ]; args = [ "-c" "echo \\"$BENTO_EVAL_SECRET|$NIX_CONFIG\\" > $out" ]; }`,
    );

  /** A non-flake and a flake system whose evaluation builds `fod` (import from derivation) and reads it. */
  function fleetReading(fod: (name: string) => string) {
    const plain = n(`p${Math.random().toString(36).slice(2, 6)}`);
    const flake = n(`f${Math.random().toString(36).slice(2, 6)}`);
    const text = flakeText([flake]).replace(`"nixos-system-${flake}-24.05"`, `builtins.seq (builtins.readFile (${fod(`${flake}-fod`)})) "nixos-system-${flake}-24.05"`);
    const fleet = newFleet({ [plain]: { nonFlake: true }, fl: { flakeText: text } });
    suite.server.addUsers([plain, flake]);
    writeFileSync(path.join(fleet.root, 'hosts', plain, 'configuration.nix'), `{ ... }: { networking.hostName = builtins.seq (builtins.readFile (${fod(`${plain}-fod`)})) "${plain}"; }\n`);
    return { fleet, plain, flake, fods: [`${plain}-fod`, `${flake}-fod`] };
  }

  function expectBothFailed(deploy: ReturnType<typeof run>, plain: string, flake: string) {
    expect(deploy.status, deploy.stdout + deploy.stderr).toBe(1);
    for (const name of [plain, flake]) {
      expect(deploy.stdout).toMatch(new RegExp(`FAILED  ${name} `));
      expect(existsSync(path.join(suite.server.chrootDir, name, 'config'))).toBe(false);
    }
  }

  it("builtin:fetchurl never hands a build the daemon's netrc (a flake and a configuration.nix): nothing of it is stored or published", () => {
    const secret = secretWord();
    const netrc = path.join(rootOnlyDir('bento-eval-netrc-', { netrc: `machine bento.invalid login bento password ${secret}\n` }), 'netrc');
    const { fleet, plain, flake, fods } = fleetReading(netrcFetch);
    // Nix's build directory is TMPDIR/nix-build-<drv>-0, with TMPDIR the builder's (the daemon's or, building directly, bento's).
    // A configuration that trusts every user would let the evaluator hand the daemon its own netrc-file: bento's daemon trusts root alone.
    const deploy = bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV, NIX_CONFIG: `netrc-file = ${netrc}\ntrusted-users = *\nsubstituters =\n`, TMPDIR: '/tmp' } });
    expect(deploy.stdout + deploy.stderr).not.toContain(secret);
    expect(storeLeaks(fods, secret)).toEqual([]);
    expect(chrootHolds(secret)).toBe(false);
    expectBothFailed(deploy, plain, flake);
  });

  it("a fixed-output build never gets the daemon's environment (impureEnvVars): root's variables and NIX_CONFIG stay out of the store", () => {
    const secret = secretWord();
    const token = secretWord();
    const { fleet, plain, flake, fods } = fleetReading(environmentCopy);
    const deploy = bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV, BENTO_EVAL_SECRET: secret, NIX_CONFIG: `access-tokens = bento.invalid=${token}\nsubstituters =\n` } });
    expect(deploy.stdout + deploy.stderr).not.toContain(secret);
    expect(storeLeaks(fods, secret)).toEqual([]);
    expect(storeLeaks(fods, token)).toEqual([]);
    expect(chrootHolds(secret)).toBe(false);
    expectBothFailed(deploy, plain, flake);
  });

  it("NIX_CONFIG still configures bento's daemon (read from a file); an empty build-users-group, with which Nix would build as root, is refused", () => {
    const name = n('bug');
    // A derivation of its own, never built before: the daemon must build it.
    const text = flakeText([name]).replace(`"nixos-system-${name}-24.05"`, `"nixos-system-${name}-${secretWord()}"`);
    const fleet = newFleet({ bug: { flakeText: text } });
    const missing = bento(['build', '--name', name], { env: { BENTO_DIR: fleet.root, NIX_CONFIG: 'build-users-group = bento-no-such-group\nsubstituters =\n' } });
    expect(missing.status).toBe(1);
    expect(missing.stdout).toMatch(new RegExp(`FAILED  ${name} .*the group 'bento-no-such-group' specified in 'build-users-group' does not exist`));
    const empty = bento(['build', '--name', name], { env: { BENTO_DIR: fleet.root, NIX_CONFIG: 'build-users-group =\nsubstituters =\n' } });
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain("hosts/bug/flake.nix: Nix's build-users-group is empty (nix.conf or NIX_CONFIG): Nix would build fleet code as root");
  });

  it('bento build switch builds the system as deploy does before anything is applied: neither the hg hook nor the netrc gets root\'s rights, nothing is applied', () => {
    const name = n('hgsw');
    const marks = openDir('bento-eval-marks-');
    const secret = secretWord();
    const netrc = path.join(rootOnlyDir('bento-eval-netrc-', { netrc: `machine bento.invalid login bento password ${secret}\n` }), 'netrc');
    const { fleet, plain, flake, fods } = fleetReading(netrcFetch);
    mkdirSync(path.join(fleet.root, 'hosts', name));
    hookedMercurialRepository(path.join(fleet.root, 'hosts', name, 'repo'), marks);
    writeFileSync(path.join(fleet.root, 'hosts', name, 'configuration.nix'), `{ ... }: { networking.hostName = builtins.seq (builtins.fetchMercurial ./repo).outPath "${name}"; }\n`);
    writeFileSync(path.join(fleet.root, 'keys', `${name}.pub`), `${testKey(name)}\n`);
    const record = mkdtempSync(path.join(os.tmpdir(), 'bento-record-'));
    suite.later(() => rmSync(record, { recursive: true, force: true }));
    const env = { BENTO_DIR: fleet.root, PATH: `${APPLY_STUBS_DIR}:${process.env.PATH}`, FAKE_SERVER: record, ...NIX_ENV, NIX_CONFIG: `netrc-file = ${netrc}\nsubstituters =\n`, TMPDIR: '/tmp' };
    for (const system of [name, plain, flake]) {
      const apply = bento(['build', 'switch', '--yes', '--name', system], { env });
      expect(apply.stdout + apply.stderr).not.toContain(secret);
      expect(apply.status, apply.stdout + apply.stderr).toBe(1);
      expect(apply.stdout).toMatch(new RegExp(`FAILED  ${system} `));
    }
    expectHookPowerless(marks);
    expect(storeLeaks(fods, secret)).toEqual([]);
    expect(existsSync(path.join(record, 'calls'))).toBe(false);
    expect(storeHoldsKey()).toBeUndefined();
  });
});
