/**
 * Each command's flags and environment → its options, without a process and
 * without running it (as the GitHub CLI tests NewCmd… apart from …Run).
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { command as build } from '../../src/commands/build.js';
import { command as completion } from '../../src/commands/completion.js';
import { command as deploy } from '../../src/commands/deploy.js';
import { command as diff } from '../../src/commands/diff.js';
import { command as flakeUpdate } from '../../src/commands/flake-update.js';
import { command as generate } from '../../src/commands/generate.js';
import { command as init } from '../../src/commands/init.js';
import type { AnyCommandSpec, CommandWorld } from '../../src/commands/io.js';
import { command as prune } from '../../src/commands/prune.js';
import { command as reboots } from '../../src/commands/reboots.js';
import { command as rollout } from '../../src/commands/rollout.js';
import { command as status } from '../../src/commands/status.js';
import { command as trigger } from '../../src/commands/trigger.js';

const program = new Command('bento');

function world(env: Record<string, string> = {}, extra: Partial<CommandWorld> = {}): CommandWorld {
  return { fleetDir: '/fleet', env, cwd: '/work', home: '/home/u', cores: 6, isTTY: false, program, ...extra };
}

/** Parses `args` with the command's own flags, as commander does for `bento <name> args…`, and returns its options. */
function optionsOf(spec: AnyCommandSpec, args: string[], at: CommandWorld = world()): unknown {
  const command = new Command('x').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  spec.define(command);
  command.action(() => {});
  command.parse(args, { from: 'user' });
  return spec.options({ args: command.processedArgs, flags: command.opts() as never }, at);
}

describe('command options', () => {
  it('deploy: NAME and --name (spaces or commas), --jobs defaulting to the cores, VERBOSE, Nix flags, --all', () => {
    expect(optionsOf(deploy, [], world())).toEqual({ fleetDir: '/fleet', names: [], jobs: 6, nix: { evaluateOnly: undefined, verbose: false, builders: undefined, maxJobs: undefined }, all: false });
    expect(optionsOf(deploy, ['-n', 'c,d', '--name', 'e', '-j', '2', '--builders', 'ssh://b', '--max-jobs', '0', '--all'], world({ NAME: 'a b', VERBOSE: '1' }))).toEqual({
      fleetDir: '/fleet',
      names: ['a', 'b', 'c', 'd', 'e'],
      jobs: 2,
      nix: { evaluateOnly: undefined, verbose: true, builders: 'ssh://b', maxJobs: '0' },
      all: true,
    });
    expect(() => optionsOf(deploy, ['-j', '0'])).toThrow('expected a positive whole number, got "0"');
  });

  it('build: the action word, builds never evaluate only, --target-ip or TARGET_IP, --yes', () => {
    expect(optionsOf(build, [], world())).toMatchObject({ action: 'build', yes: false, targetIp: undefined, nix: { evaluateOnly: false } });
    expect(optionsOf(build, ['switch', '-y'], world({ TARGET_IP: 'root@m' }))).toMatchObject({ action: 'switch', yes: true, targetIp: 'root@m' });
    expect(optionsOf(build, ['test', '--target-ip', 'm2'], world({ TARGET_IP: 'root@m' }))).toMatchObject({ targetIp: 'm2' });
    expect(optionsOf(build, ['test'], world({ TARGET_IP: '' }))).toMatchObject({ targetIp: undefined });
  });

  it('diff: colours only on a terminal without NO_COLOR', () => {
    expect(optionsOf(diff, ['-n', 'a'], world({ NAME: 'b' }, { isTTY: true }))).toEqual({ fleetDir: '/fleet', names: ['b', 'a'], color: true });
    expect(optionsOf(diff, [], world({ NO_COLOR: '1' }, { isTTY: true }))).toMatchObject({ color: false });
    expect(optionsOf(diff, [], world({}, { isTTY: false }))).toMatchObject({ color: false });
  });

  it('status: the cache in XDG_CACHE_HOME or ~/.cache, none with --no-cache; --prometheus from the current directory; NO_COLOR', () => {
    expect(optionsOf(status, ['--once'], world())).toEqual({ fleetDir: '/fleet', json: undefined, once: true, prometheusFile: undefined, isTTY: false, noColor: false, cacheDir: '/home/u/.cache/bento' });
    expect(optionsOf(status, ['--json', '--prometheus', 'm/bento.prom'], world({ XDG_CACHE_HOME: '/c', NO_COLOR: '1' }, { isTTY: true }))).toMatchObject({
      json: true,
      prometheusFile: '/work/m/bento.prom',
      isTTY: true,
      noColor: true,
      cacheDir: '/c/bento',
    });
    expect(optionsOf(status, ['--no-cache'], world({ XDG_CACHE_HOME: '/c' }))).toMatchObject({ cacheDir: undefined });
  });

  it('reboots: the fleet directory, nothing else', () => {
    expect(optionsOf(reboots, [], world({}))).toEqual({ fleetDir: '/fleet' });
  });

  it('prune and trigger: NAME then the arguments; their numbers checked', () => {
    expect(optionsOf(prune, ['c', '--keep', '0', '--dry-run'], world({ NAME: 'a,b' }))).toEqual({ fleetDir: '/fleet', names: ['a', 'b', 'c'], keep: 0, dryRun: true });
    expect(() => optionsOf(prune, ['--keep', 'x'])).toThrow('expected a whole number, got "x"');
    expect(optionsOf(trigger, ['m1', 'm2', '-t', '9'], world())).toEqual({ fleetDir: '/fleet', names: ['m1', 'm2'], all: undefined, timeoutSeconds: 9 });
    expect(optionsOf(trigger, ['--all'], world({ NAME: 'x' }))).toMatchObject({ names: ['x'], all: true });
  });

  it('generate, init, flake-update, rollout, completion: their arguments and flags', () => {
    expect(optionsOf(generate, ['-o', 'out', '-j', '3'])).toEqual({ fleetDir: '/fleet', outputDir: '/work/out', jobs: 3 });
    expect(optionsOf(generate, [])).toEqual({ fleetDir: '/fleet', outputDir: undefined, jobs: undefined });
    expect(optionsOf(init, [])).toEqual({ fleetDir: '/fleet' });
    expect(optionsOf(flakeUpdate, ['nixpkgs'])).toEqual({ fleetDir: '/fleet', input: 'nixpkgs' });
    expect(optionsOf(rollout, ['abort', '--revert'])).toEqual({ fleetDir: '/fleet', action: 'abort', json: undefined, revert: true });
    expect(() => optionsOf(rollout, [])).toThrow("missing required argument 'action'");
    expect(optionsOf(completion, ['zsh'])).toEqual({ shell: 'zsh', program });
  });
});
