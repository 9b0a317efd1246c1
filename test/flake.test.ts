/**
 * flake.nix and default.nix, evaluated by the real Nix against a stand-in
 * for their one input, nixpkgs (test/fixtures/nixpkgs-standin: the real
 * nixpkgs lib, NixOS's module system with the options bento touches, and
 * builders that record their arguments), since nixpkgs itself cannot be
 * downloaded here: every output evaluates and `nix flake check` passes; the
 * package is buildNpmPackage given what nixpkgs' buildNpmPackage and
 * importNpmLock take (pkgs/build-support/node/ in NixOS/nixpkgs); the
 * server module's timers default to the flake's bento.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';

const FIXTURES = path.join(PACKAGE_ROOT, 'test', 'fixtures');
const SYSTEM = 'x86_64-linux';
/** What the flake reads: its files, and the sources of the package and the checks. */
const FLAKE_FILES = ['flake.nix', 'default.nix', 'nix', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'templates', 'utils', 'generated'];

let dir: string;
let flake: string;
let standIn: string;
const env = { ...process.env, NIX_CONFIG: 'experimental-features = nix-command flakes\nsubstituters =\nsandbox = false\n' };

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-flake-'));
  // The flake as a path: flake (a copy: this checkout's node_modules/ would be copied into the store too).
  flake = path.join(dir, 'bento');
  for (const file of FLAKE_FILES) cpSync(path.join(PACKAGE_ROOT, file), path.join(flake, file), { recursive: true });
  standIn = path.join(dir, 'nixpkgs');
  cpSync(path.join(FIXTURES, 'nixpkgs-standin'), standIn, { recursive: true });
  cpSync(path.join(FIXTURES, 'nixos', 'options.nix'), path.join(standIn, 'options.nix'));
  const lib = process.env.BENTO_NIXPKGS_LIB;
  if (!lib) throw new Error('BENTO_NIXPKGS_LIB is not set (test/helpers/global-setup.ts sets it)');
  cpSync(lib, path.join(standIn, 'lib'), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const overridden = (): string[] => ['--no-write-lock-file', '--override-input', 'nixpkgs', `path:${standIn}`];

/** `nix eval --json` of an output of the flake, with the stand-in nixpkgs. */
function evalFlake<T>(attribute: string, extra: string[] = []): T {
  const json = execFileSync('nix', ['eval', '--json', ...overridden(), ...extra, `path:${flake}#${attribute}`], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(json) as T;
}

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  name?: string;
}

interface Fetch {
  function: string;
  name: string;
  spec: string;
  outputHash: string;
  outputHashMode: string;
  buildCommand: string;
  impureEnvVars: string[];
  nativeBuildInputs: string[];
}

interface PackageArgs {
  function: string;
  pname: string;
  version: string;
  src: string;
  npmDeps: { function: string; npmRoot: string; packageSourceOverrides: Record<string, Fetch> };
  npmConfigHook: string;
  npmPackFlags: string[];
  nativeBuildInputs: string[];
  postInstall: string;
  runtimeTools: string[];
  meta: { mainProgram: string; description: string };
}

describe('flake.nix, with a stand-in nixpkgs', () => {
  it('passes `nix flake check`: every output evaluates, and the checks build (here: stand-ins)', () => {
    const check = spawnSync('nix', ['flake', 'check', ...overridden(), `path:${flake}`], { encoding: 'utf8', env });
    expect(check.stderr).not.toMatch(/^error/m);
    expect(check.status).toBe(0);
    expect(check.stderr).toContain('running flake checks');
  });

  it('has one input, nixpkgs', () => {
    const metadata = JSON.parse(execFileSync('nix', ['flake', 'metadata', '--json', ...overridden(), `path:${flake}`], { encoding: 'utf8', env })) as { locks: { nodes: Record<string, { inputs?: Record<string, string> }> } };
    expect(Object.keys(metadata.locks.nodes).sort()).toEqual(['nixpkgs', 'root']);
    expect(metadata.locks.nodes.root?.inputs).toEqual({ nixpkgs: 'nixpkgs' });
  });

  it('builds the package with buildNpmPackage, its npm dependencies from package-lock.json through importNpmLock', () => {
    const args = evalFlake<PackageArgs>(`packages.${SYSTEM}.default.standIn`);
    const packageJson = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string; description: string };
    expect(args).toMatchObject({ function: 'buildNpmPackage', pname: 'bento', version: packageJson.version, npmConfigHook: 'import-npm-lock-npm-config-hook' });
    expect(args.meta.mainProgram).toBe('bento');
    expect(args.meta.description).toBe(packageJson.description);
    // importNpmLock reads package.json and package-lock.json at npmRoot: the flake's own.
    expect(args.npmDeps.function).toBe('importNpmLock');
    expect(readFileSync(path.join(args.npmDeps.npmRoot, 'package-lock.json'), 'utf8')).toBe(readFileSync(path.join(PACKAGE_ROOT, 'package-lock.json'), 'utf8'));
    // The source: what the build reads, not tests or generated/.
    expect(readdirSync(args.src).sort()).toEqual(['nix', 'package-lock.json', 'package.json', 'src', 'templates', 'tsconfig.build.json', 'tsconfig.json', 'utils']);
    expect(readdirSync(path.join(args.src, 'nix'))).toEqual(['modules']);
    // dist/ is built once, by npmBuildHook: the pack that lists what gets installed runs no prepack.
    expect(args.npmPackFlags).toEqual(['--ignore-scripts']);
  });

  it('fetches every locked registry package, which the lock names without a URL, by npm itself, checked against its integrity', () => {
    const lock = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
    const locked = Object.entries(lock.packages).filter(([key, entry]) => key !== '' && !entry.link && entry.resolved === undefined);
    expect(locked.length).toBeGreaterThan(100);
    const overrides = evalFlake<PackageArgs>(`packages.${SYSTEM}.default.standIn`).npmDeps.packageSourceOverrides;
    expect(Object.keys(overrides).sort()).toEqual(locked.map(([key]) => key).sort());
    for (const [key, entry] of locked) {
      const fetch = overrides[key] as Fetch;
      const name = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      expect(fetch).toMatchObject({ function: 'stdenvNoCC.mkDerivation', outputHash: entry.integrity, outputHashMode: 'flat', spec: `${name}@${entry.version}` });
      // npm takes a file: dependency for a tarball by its .tgz name.
      expect(fetch.name).toBe(`${name.split('/').pop()}-${entry.version}.tgz`);
      expect(fetch.nativeBuildInputs).toEqual(['nodejs']);
      expect(fetch.buildCommand).toContain('npm pack --ignore-scripts --pack-destination "$TMPDIR/pack" "$spec"');
      expect(fetch.impureEnvVars).toEqual(expect.arrayContaining(['https_proxy', 'HTTPS_PROXY', 'NPM_CONFIG_REGISTRY']));
    }
    expect(overrides['node_modules/@types/node']).toMatchObject({ name: `node-${lock.packages['node_modules/@types/node']?.version}.tgz` });
  });

  it('wraps bin/bento with the tools bento runs first on its PATH', () => {
    const args = evalFlake<PackageArgs>(`packages.${SYSTEM}.default.standIn`);
    expect(args.nativeBuildInputs).toContain('make-wrapper-hook');
    const tools = ['nix', 'openssh', 'util-linux', 'getent', 'git', 'coreutils', 'bash'];
    expect(args.runtimeTools).toEqual(tools);
    expect(args.postInstall).toContain(`wrapProgram "$out/bin/bento" --prefix PATH : ${tools.map((tool) => `/stand-in/${tool}/bin`).join(':')}`);
  });

  it('apps.default runs the package\'s bin/bento; overlays.default gives pkgs.bento', () => {
    const out = evalFlake<string>(`packages.${SYSTEM}.default.outPath`);
    expect(evalFlake<string>(`apps.${SYSTEM}.default.program`)).toBe(`${out}/bin/bento`);
    expect(evalFlake<string>(`apps.${SYSTEM}.default.type`)).toBe('app');
    const standInPkgs = path.join(standIn, 'default.nix');
    const overlaid = evalFlake<{ function: string; pname: string }>('overlays.default', ['--impure', '--apply', `overlay: let pkgs = import ${standInPkgs} { }; in (overlay pkgs pkgs).bento.standIn`]);
    expect(overlaid).toMatchObject({ function: 'buildNpmPackage', pname: 'bento' });
  });

  it("its checks: the package, the CLI run in the sandbox, and the modules evaluated in NixOS with the example fleet's settings", () => {
    expect(evalFlake<string>(`checks.${SYSTEM}.package.outPath`)).toBe(evalFlake<string>(`packages.${SYSTEM}.default.outPath`));
    const cli = evalFlake<{ script: string; nativeBuildInputs: string[] }>(`checks.${SYSTEM}.cli.standIn`);
    expect(cli.nativeBuildInputs).toEqual(['buildNpmPackage', 'openssh']);
    for (const command of ['bento --version', 'bento init', 'bento generate']) expect(cli.script).toContain(`\n${command}\n`);
    // The JSON the check writes: built here, from the real module system.
    const built = JSON.parse(execFileSync('nix', ['build', '--json', '--no-link', ...overridden(), `path:${flake}#checks.${SYSTEM}.nixos-modules`], { encoding: 'utf8', env })) as { outputs: { out: string } }[];
    const modules = JSON.parse(readFileSync(built[0]?.outputs.out ?? '', 'utf8')) as { services: Record<string, { script: string }>; users: string[]; sshd: string };
    expect(Object.keys(modules.services).sort()).toEqual(['bento-notify', 'bento-prune', 'bento-prune-logs', 'bento-reboot', 'bento-rollout-advance', 'bento-upgrade', 'listen-update@']);
    expect(modules.users).toEqual(['kikimora', 'my-laptop', 'nas', 'router']);
    expect(modules.sshd).toContain('Match Group sftp_users');
  });

  it("nixosModules.server: prune, rollout.advance and notify run the flake's bento unless told otherwise", () => {
    const out = evalFlake<string>(`packages.${SYSTEM}.default.outPath`);
    const built = JSON.parse(execFileSync('nix', ['build', '--json', '--no-link', ...overridden(), `path:${flake}#checks.${SYSTEM}.nixos-modules`], { encoding: 'utf8', env })) as { outputs: { out: string } }[];
    const modules = JSON.parse(readFileSync(built[0]?.outputs.out ?? '', 'utf8')) as { services: Record<string, { script: string }> };
    expect(modules.services['bento-prune']?.script).toBe(`exec ${out}/bin/bento --dir /srv/fleet prune`);
    expect(modules.services['bento-rollout-advance']?.script).toBe(`exec ${out}/bin/bento --dir /srv/fleet rollout advance`);
    expect(modules.services['bento-notify']?.script).toBe(`exec ${out}/bin/bento --dir /srv/fleet notify`);
  });
});

describe('default.nix, without flakes', () => {
  /** `nix-instantiate --eval` of EXPR, with <nixpkgs> the stand-in and `bento` the copy's default.nix. */
  function evalDefault<T>(expression: string): T {
    const json = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '-I', `nixpkgs=${standIn}`, '--expr', `let bento = import ${path.join(flake, 'default.nix')}; in ${expression}`], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(json) as T;
  }

  it('builds the same package, with <nixpkgs> or the pkgs it is given', () => {
    const args = evalDefault<PackageArgs>('(bento { }).package.standIn');
    expect(args).toMatchObject({ function: 'buildNpmPackage', pname: 'bento', npmConfigHook: 'import-npm-lock-npm-config-hook' });
    expect(Object.keys(args.npmDeps.packageSourceOverrides)).toContain('node_modules/commander');
    expect(evalDefault<string>(`(bento { pkgs = import ${standIn} { }; }).package.standIn.function`)).toBe('buildNpmPackage');
    expect(evalDefault<string>('((bento { }).overlay (import <nixpkgs> { }) { }).bento.standIn.pname')).toBe('bento');
  });

  it("gives the modules, the server's timers running its package", () => {
    const script = evalDefault<string>(
      `let b = bento { }; system = (import <nixpkgs/nixos-system.nix> { lib = import <nixpkgs/lib>; }) { system = "${SYSTEM}"; modules = [ b.nixosModules.client b.nixosModules.server ${path.join(flake, 'generated', 'server', 'bento-server-settings.nix')} { services.bento-server.prune = { enable = true; fleetDir = "/srv/fleet"; }; } ]; }; in system.config.systemd.services.bento-prune.script`,
    );
    expect(script).toBe(`exec ${evalDefault<string>('(bento { }).package.outPath')}/bin/bento --dir /srv/fleet prune`);
  });
});
