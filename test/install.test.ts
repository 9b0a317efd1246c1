/**
 * bento installed as a user installs it, outside this checkout: the npm
 * tarball (package.json's `files`, `bin`, `engines`) installed into an empty
 * prefix and run there (--version, init, generate); and the README's
 * install blocks, run as written in a fresh clone, each giving a `bento`
 * that runs. npm reads packages from its cache where it can
 * (--prefer-offline: a global install of a tarball still asks the registry
 * for its dependencies' metadata, which --offline cannot answer).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { testKey } from './helpers/fleet.js';

const VERSION = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-install-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** npm's environment: global installs into `prefix`, packages from the cache where it has them, no chatter. */
function npmEnv(prefix: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    npm_config_prefix: prefix,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
}

/** Runs `bento ARGS` as installed in `prefix`, with a PATH that has node and the system's tools but no other bento. */
function installed(prefix: string, args: string[], cwd: string) {
  return spawnSync(path.join(prefix, 'bin', 'bento'), args, {
    cwd,
    encoding: 'utf8',
    env: { PATH: `${path.join(prefix, 'bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: dir, NO_COLOR: '1' },
  });
}

/** The sh blocks of the README's "Installing bento" section that put bento on PATH. */
export function installBlocks(readme: string): string[] {
  const section = readme.split(/^## /m).find((part) => part.startsWith('Installing bento\n')) ?? '';
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '').filter((block) => block.includes('npm install -g'));
}

describe('the npm package', () => {
  let prefix: string;
  let tarball: string;
  beforeAll(() => {
    // dist/ is built (npm test's pretest); --ignore-scripts: the prepack build
    // would rewrite dist/ under the test files running beside this one.
    const packDir = path.join(dir, 'pack');
    mkdirSync(packDir);
    const name = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: PACKAGE_ROOT, encoding: 'utf8', env: npmEnv(dir) }).trim().split('\n').pop() ?? '';
    tarball = path.join(packDir, name);
    prefix = path.join(dir, 'prefix');
    execFileSync('npm', ['install', '-g', tarball], { cwd: dir, encoding: 'utf8', env: npmEnv(prefix), stdio: 'pipe' });
  }, 300_000);

  it("holds what bento reads at run time (files), and no source or test", () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    for (const file of ['package/package.json', 'package/dist/main.js', 'package/dist/paths.js', 'package/utils/bento.nix', 'package/nix/modules/client.nix', 'package/nix/modules/server.nix', 'package/templates/client/update.sh.hbs']) {
      expect(files).toContain(file);
    }
    expect(files.filter((file) => /^package\/(src|test|example|generated|bench|node_modules)\//.test(file))).toEqual([]);
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as { bin: Record<string, string>; engines: Record<string, string> };
    expect(manifest.bin).toEqual({ bento: 'dist/main.js' });
    expect(manifest.engines.node).toBe('>=20');
  });

  it('installed into an empty prefix, runs: --version, init, generate', () => {
    expect(installed(prefix, ['--version'], dir)).toMatchObject({ status: 0, stdout: `${VERSION}\n` });
    const fleet = path.join(dir, 'fleet');
    mkdirSync(fleet);
    const init = installed(prefix, ['init'], fleet);
    expect(init.stderr).toContain('created a bento fleet');
    expect(init.status).toBe(0);
    // A machine without flakes: generate reads it without evaluating (init's
    // example flake would fetch nixpkgs, which this machine cannot).
    rmSync(path.join(fleet, 'hosts', 'example'), { recursive: true });
    mkdirSync(path.join(fleet, 'hosts', 'web'));
    writeFileSync(path.join(fleet, 'hosts', 'web', 'configuration.nix'), '{ networking.hostName = "web"; }\n');
    writeFileSync(path.join(fleet, 'keys', 'web.pub'), `${testKey('web')}\n`);
    const generate = installed(prefix, ['generate'], fleet);
    expect(generate.stderr).toContain('1 systems');
    expect(generate.status).toBe(0);
    expect(existsSync(path.join(fleet, 'generated', 'systems', 'web', 'update.sh'))).toBe(true);
    // Its templates and its NixOS modules came with it.
    expect(readFileSync(path.join(fleet, 'generated', 'client', 'bento-module.nix'), 'utf8')).toContain(readFileSync(path.join(PACKAGE_ROOT, 'nix', 'modules', 'client.nix'), 'utf8'));
    expect(readFileSync(path.join(fleet, 'generated', 'server', 'bento-server-settings.nix'), 'utf8')).toContain(testKey('web'));
  });
});

describe("the README's install blocks, from a fresh clone", () => {
  it('are there: a linked clone, and the packed tarball', () => {
    const blocks = installBlocks(readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8'));
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain('npm install -g .');
    expect(blocks[1]).toContain('npm pack');
  });

  it.each([0, 1])('block %i, run as written, puts a bento that runs on PATH', (index) => {
    const clone = path.join(dir, `clone-${index}`);
    // The committed tree, as a user's clone has it (never this checkout's node_modules/ or dist/).
    execFileSync('git', ['clone', '-q', PACKAGE_ROOT, clone], { stdio: 'pipe' });
    const block = installBlocks(readFileSync(path.join(clone, 'README.md'), 'utf8'))[index] ?? '';
    const prefix = path.join(dir, `prefix-${index}`);
    const run = spawnSync('sh', ['-e', '-c', block], { cwd: clone, encoding: 'utf8', env: npmEnv(prefix) });
    expect(run.status, run.stderr).toBe(0);
    expect(installed(prefix, ['--version'], dir)).toMatchObject({ status: 0, stdout: `${VERSION}\n` });
    const fleet = path.join(dir, `fleet-${index}`);
    mkdirSync(fleet);
    expect(installed(prefix, ['init'], fleet).status).toBe(0);
  }, 300_000);
});
