import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { bento, bentoWithoutReader, CLI } from './helpers/cli.js';
import { Collector } from './helpers/collect.js';
import { makeFleet, type TestFleet } from './helpers/fleet.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

function fleet(spec: Parameters<typeof makeFleet>[0]): TestFleet {
  const made = makeFleet(spec);
  cleanups.push(made.cleanup);
  return made;
}

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('bento CLI', () => {
  it('prints its version and help', () => {
    const version = bento(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    const help = bento(['--help']);
    expect(help.stdout).toContain('generate');
    expect(help.stdout).toContain('BENTO_DIR');
  });

  it('says what to do on an unknown command', () => {
    const run = bento(['generat']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("unknown command 'generat'");
    expect(run.stderr).toContain('(Did you mean generate?)');
  });

  it('init creates a fleet and refuses to touch it again', () => {
    const dir = tempDir();
    const first = bento(['init'], { env: { BENTO_DIR: dir } });
    expect(first.status).toBe(0);
    for (const file of ['config.sh', 'hosts/example/flake.nix', 'hosts/example/configuration.nix', 'utils/bento.nix', 'keys/README.md']) {
      expect(existsSync(path.join(dir, file)), file).toBe(true);
    }
    const config = readFileSync(path.join(dir, 'config.sh'), 'utf8');
    // A new fleet spreads its polls over the 15-minute interval.
    expect(config).toMatch(/^UPDATE_CALENDAR='\*:0\/15'$/m);
    expect(config).toMatch(/^UPDATE_RANDOM_DELAY=15min$/m);
    const second = bento(['--dir', dir, 'init']);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain('already holds a fleet (config.sh, hosts, keys, utils exist); init never overwrites one');
    expect(readFileSync(path.join(dir, 'config.sh'), 'utf8')).toBe(config);
  });

  it('init writes a config.sh that bento itself accepts', () => {
    const dir = tempDir();
    bento(['init'], { cwd: dir });
    writeFileSync(path.join(dir, 'hosts', 'example', 'flake.nix'), '{ outputs = { self }: { nixosConfigurations.example = {}; }; }\n');
    const run = bento(['generate'], { cwd: dir });
    expect(run.stderr).toContain('warning: keys/example.pub is missing');
    expect(run.status).toBe(0);
    expect(existsSync(path.join(dir, 'generated', 'systems', 'example', 'update.sh'))).toBe(true);
  });

  it('generate writes scripts with mode 0755, then only what changed, and removes what is gone', () => {
    const { root } = fleet({ hosts: { router: { nonFlake: true }, flakes: { flake: ['a', 'b'] } } });
    const first = bento(['generate'], { env: { BENTO_DIR: root } });
    expect(first.stderr).toContain(`${root}/generated: 3 systems, 17 files written, 0 unchanged, 0 removed`);
    expect(first.status).toBe(0);
    expect(statSync(path.join(root, 'generated/systems/a/update.sh')).mode & 0o777).toBe(0o755);
    const mtime = statSync(path.join(root, 'generated/systems/a/update.sh')).mtimeMs;

    const again = bento(['generate'], { env: { BENTO_DIR: root } });
    expect(again.stderr).toContain('0 files written, 17 unchanged, 0 removed');
    expect(statSync(path.join(root, 'generated/systems/a/update.sh')).mtimeMs).toBe(mtime);

    rmSync(path.join(root, 'hosts', 'router'), { recursive: true });
    const removed = bento(['generate'], { env: { BENTO_DIR: root } });
    // The server's three files: its users (the settings of the NixOS module, setup-debian.sh), and sshd's limits sized for one system fewer.
    expect(removed.stderr).toContain('2 systems, 3 files written, 12 unchanged, 2 removed');
    expect(existsSync(path.join(root, 'generated/systems/router'))).toBe(false);
  });

  it('a broken flake is reported; the rest is generated and nothing of the broken one is lost', () => {
    const { root } = fleet({ hosts: { good: { flake: ['fine'] }, other: { flake: ['victim'] } } });
    expect(bento(['generate'], { cwd: root }).status).toBe(0);
    const server = readFileSync(path.join(root, 'generated/server/bento-server-settings.nix'), 'utf8');
    writeFileSync(path.join(root, 'hosts/other/flake.nix'), '{ outputs = { self }: { nixosConfigurations = throw "broken on purpose"; }; }\n');
    writeFileSync(path.join(root, 'config.sh'), `${readFileSync(path.join(root, 'config.sh'), 'utf8')}TIMEOUT=9\n`);

    const run = bento(['generate'], { cwd: root });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('error: hosts/other/flake.nix: ');
    expect(run.stderr).toContain('broken on purpose');
    expect(run.stderr).toContain('1 host directory failed');
    expect(readFileSync(path.join(root, 'generated/systems/fine/update.sh'), 'utf8')).toContain('BENTO_TIMEOUT=9');
    expect(readFileSync(path.join(root, 'generated/systems/victim/update.sh'), 'utf8')).toContain('BENTO_TIMEOUT=20');
    expect(readFileSync(path.join(root, 'generated/server/bento-server-settings.nix'), 'utf8')).toBe(server);
  });

  it('refuses bad input before writing anything', () => {
    const hostile = fleet({ hosts: { 'x$(touch owned)': { nonFlake: true } }, keys: [] });
    const run = bento(['generate'], { cwd: hostile.root });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('bento: error: hosts/x$(touch owned): ');
    expect(existsSync(path.join(hostile.root, 'generated'))).toBe(false);
    expect(existsSync(path.join(hostile.root, 'owned'))).toBe(false);

    const badConfig = fleet({ config: 'CHROOT_DIR=/x\nREMOTE_IP=$(hostname)\n', hosts: { r: { nonFlake: true } } });
    const config = bento(['generate'], { cwd: badConfig.root });
    expect(config.status).toBe(1);
    expect(config.stderr).toContain('bento: error: config.sh:2: variable or command substitution ($) is not allowed in the value of REMOTE_IP');
    expect(existsSync(path.join(badConfig.root, 'generated'))).toBe(false);
  });

  it('refuses CHROOT_DIR=/ before rendering a setup-debian.sh that would re-mode /tmp', () => {
    const { root } = fleet({ config: 'CHROOT_DIR=/\nREMOTE_IP=a.example\n', hosts: { tmp: { nonFlake: true } } });
    const run = bento(['generate'], { cwd: root });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("bento: error: config.sh:1: CHROOT_DIR / cannot hold SFTP chroots: / is a directory of the system itself; each machine's chroot would be a directory in it (CHROOT_DIR/<name>)");
    expect(existsSync(path.join(root, 'generated'))).toBe(false);
  });

  it('says which file it cannot write when generated/ is not a directory', () => {
    const { root } = fleet({ hosts: { r: { nonFlake: true } } });
    writeFileSync(path.join(root, 'generated'), 'not a directory\n');
    const run = bento(['generate'], { cwd: root });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^bento: error: cannot write ${root}/generated/[a-z/.-]+: ENOTDIR`, 'm'));
    expect(readFileSync(path.join(root, 'generated'), 'utf8')).toBe('not a directory\n');
  });

  it('never writes or removes through a symbolic link in generated/ (deploy runs it as root)', () => {
    const { root } = fleet({ hosts: { r: { nonFlake: true } } });
    const victim = tempDir();
    writeFileSync(path.join(victim, 'precious'), 'keep\n');
    mkdirSync(path.join(victim, 'r'));
    writeFileSync(path.join(victim, 'r', 'update.sh'), 'keep\n');
    const untouched = () => {
      expect(readdirSync(victim).sort()).toEqual(['precious', 'r']);
      expect(readdirSync(path.join(victim, 'r'))).toEqual(['update.sh']);
      expect(readFileSync(path.join(victim, 'r', 'update.sh'), 'utf8')).toBe('keep\n');
    };

    // generated/ itself a link out of the fleet: every file bento does not produce there would be removed.
    symlinkSync(victim, path.join(root, 'generated'));
    const linked = bento(['generate'], { cwd: root });
    expect(linked.status).toBe(1);
    expect(linked.stderr).toContain(`bento: error: ${root}/generated is a symbolic link (to ${victim}): bento does not write or remove files through a link`);
    untouched();
    rmSync(path.join(root, 'generated'));

    // A directory inside it a link (even one staying in the fleet would let bento delete fleet files).
    mkdirSync(path.join(root, 'generated'));
    symlinkSync(victim, path.join(root, 'generated', 'systems'));
    const inner = bento(['generate'], { cwd: root });
    expect(inner.status).toBe(1);
    expect(inner.stderr).toContain(`bento: error: ${root}/generated/systems is a symbolic link (to ${victim}): bento does not write or remove files through a link`);
    untouched();
    rmSync(path.join(root, 'generated', 'systems'));

    // A link where a file belongs is replaced, and a link bento no longer produces is removed, neither followed.
    mkdirSync(path.join(root, 'generated', 'systems', 'r'), { recursive: true });
    symlinkSync(path.join(victim, 'r', 'update.sh'), path.join(root, 'generated', 'systems', 'r', 'update.sh'));
    symlinkSync(victim, path.join(root, 'generated', 'systems', 'gone'));
    const files = bento(['generate'], { cwd: root });
    expect(files.status).toBe(0);
    expect(lstatSync(path.join(root, 'generated', 'systems', 'r', 'update.sh')).isFile()).toBe(true);
    expect(existsSync(path.join(root, 'generated', 'systems', 'gone'))).toBe(false);
    untouched();
  });

  it('--output may name a directory outside the fleet (as npm run generate:example does)', () => {
    const { root } = fleet({ hosts: { r: { nonFlake: true } } });
    const out = path.join(tempDir(), 'out');
    const run = bento(['generate', '--output', out], { cwd: root });
    expect(run.status).toBe(0);
    expect(existsSync(path.join(out, 'systems', 'r', 'update.sh'))).toBe(true);
    expect(existsSync(path.join(root, 'generated'))).toBe(false);
  });

  it('names a directory that is not a fleet, in the same words whatever the command', () => {
    const dir = tempDir();
    for (const args of [['generate'], ['build'], ['diff'], ['flake-update'], ['status', '--once'], ['prune'], ['notify'], ['trigger', '--all'], ['rollout', 'status']]) {
      const run = bento(args, { env: { BENTO_DIR: dir } });
      expect(run.status, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).toBe(
        `bento: error: ${dir}/config.sh does not exist: ${dir} is not a bento fleet directory\n  run \`bento init\` to create one, or give your fleet directory with --dir or BENTO_DIR\n`,
      );
    }
  });
});

describe('bento writing to an output that fails', () => {
  it('a reader that goes away (`bento status | head -1`) ends the output, not the command: no stack trace, the exit status it would have had', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'chroot'));
    const { root } = fleet({ config: `CHROOT_DIR=${path.join(dir, 'chroot')}\nREMOTE_IP=127.0.0.1\n`, hosts: {} });
    for (const args of [['--help'], ['completion', 'bash'], ['--dir', root, 'status', '--once']]) {
      const run = await bentoWithoutReader(args);
      expect(run.stderr, args.join(' ')).toBe('');
      expect(run.status, args.join(' ')).toBe(0);
    }
  });

  it('output that cannot be written (a full disk) is an error that says so', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const run = spawnSync(process.execPath, [CLI, 'completion', 'bash'], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
      expect(run.stderr).toBe('bento: error: the output could not be written: ENOSPC: no space left on device, write\n');
      expect(run.status).toBe(1);
    } finally {
      closeSync(full);
    }
  });
});

describe('bento --help', () => {
  it('documents every config.sh key, every environment variable and every command', async () => {
    const { CONFIG_KEYS } = await import('../src/config/config.js');
    const help = bento(['--help']).stdout;
    for (const key of CONFIG_KEYS) expect(help, key).toMatch(new RegExp(`^  ${key} `, 'm'));
    for (const variable of ['BENTO_DIR', 'NAME', 'VERBOSE', 'TARGET_IP', 'NIX_SSHOPTS', 'BENTO_DEBUG', 'NO_COLOR']) expect(help, variable).toContain(`  ${variable} `);
    for (const command of ['init', 'generate', 'deploy', 'build', 'diff', 'flake-update', 'status', 'prune', 'trigger', 'rollout', 'completion']) expect(help).toMatch(new RegExp(`^  ${command} `, 'm'));
  });
});

describe('the program, built in-process', () => {
  it('has one command per module of src/commands, and building it runs nothing', async () => {
    const { buildProgram } = await import('../src/cli.js');
    const stdout = new Collector();
    const stderr = new Collector();
    const program = buildProgram({ stdout, stderr });
    const modules = readdirSync(path.join(PACKAGE_ROOT, 'src', 'commands'))
      .filter((file) => file.endsWith('.ts') && file !== 'io.ts')
      .map((file) => file.slice(0, -'.ts'.length));
    expect(program.commands.map((command) => command.name()).sort()).toEqual(modules.sort());
    expect(stdout.text + stderr.text).toBe('');
  });

  it('runs a command line and returns its exit status, printing through the io it is given', async () => {
    const { runCli } = await import('../src/cli.js');
    const stdout = new Collector();
    const stderr = new Collector();
    expect(await runCli(['node', 'bento', 'completion', 'bash'], { stdout, stderr })).toBe(0);
    expect(stdout.text).toContain('complete -o default -F _bento bento');
    const failed = { stdout: new Collector(), stderr: new Collector() };
    expect(await runCli(['node', 'bento', 'completion', 'tcsh'], failed)).toBe(1);
    expect(failed.stderr.text).toBe('bento: error: no completion for "tcsh": use bash, zsh or fish\n');
  });

  it('prints a multi-line error line by line, sanitized, never with \\x0a', async () => {
    const { reportError } = await import('../src/cli.js');
    const { ToolError, UserError, UserErrors } = await import('../src/errors.js');
    const stderr = new Collector();
    expect(reportError(new UserErrors(["hosts/a: error: undefined variable 'foo'\n       at flake.nix:3:62:\u001b[2J"]), stderr)).toBe(1);
    expect(reportError(new UserError('two\nlines'), stderr)).toBe(1);
    expect(reportError(new ToolError('nix build', 1, 'error: one\n       at two'), stderr)).toBe(1);
    expect(stderr.text).toBe(
      [
        "bento: error: hosts/a: error: undefined variable 'foo'",
        '         at flake.nix:3:62:\\x1b[2J',
        'bento: error: two',
        '  lines',
        'bento: error: command failed (exit 1): nix build',
        '  command: nix build',
        '  | error: one',
        '  |        at two',
        '',
      ].join('\n'),
    );
  });
});
