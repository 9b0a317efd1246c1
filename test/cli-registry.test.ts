/**
 * cli.ts is a registry: it loads the module of a command only when the
 * command line names it (every one for completion, which describes them
 * all), and stays short. The mocks record each load and pass the real module on.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../src/cli.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { Collector } from './helpers/collect.js';

const loaded = vi.hoisted(() => [] as string[]);
vi.mock('../src/commands/init.js', async (actual) => (loaded.push('init'), actual()));
vi.mock('../src/commands/generate.js', async (actual) => (loaded.push('generate'), actual()));
vi.mock('../src/commands/deploy.js', async (actual) => (loaded.push('deploy'), actual()));
vi.mock('../src/commands/build.js', async (actual) => (loaded.push('build'), actual()));
vi.mock('../src/commands/diff.js', async (actual) => (loaded.push('diff'), actual()));
vi.mock('../src/commands/flake-update.js', async (actual) => (loaded.push('flake-update'), actual()));
vi.mock('../src/commands/status.js', async (actual) => (loaded.push('status'), actual()));
vi.mock('../src/commands/prune.js', async (actual) => (loaded.push('prune'), actual()));
vi.mock('../src/commands/trigger.js', async (actual) => (loaded.push('trigger'), actual()));
vi.mock('../src/commands/rollout.js', async (actual) => (loaded.push('rollout'), actual()));
vi.mock('../src/commands/reboots.js', async (actual) => (loaded.push('reboots'), actual()));
vi.mock('../src/commands/completion.js', async (actual) => (loaded.push('completion'), actual()));

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await runCli(['node', 'bento', ...args], { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('the command registry', () => {
  // One sequence: a module stays loaded once imported, so each step adds what it loaded.
  it('loads no command for the help of bento, the one named for its help or `help <command>`, every one for completion', async () => {
    expect((await run('--help')).stdout).toContain('config.sh keys');
    expect(loaded).toEqual([]);
    const help = await run('--dir', '/nowhere', 'prune', '--help');
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--keep <n>');
    expect(help.stdout).toContain('deploy prunes the systems it publishes');
    expect(loaded).toEqual(['prune']);
    expect((await run('help', 'trigger')).stdout).toContain('--timeout <seconds>');
    expect(loaded).toEqual(['prune', 'trigger']);
    expect((await run('completion', 'bash')).stdout).toContain("status) words='--once --json --prometheus --no-cache --help'");
    expect([...loaded].sort()).toEqual(['build', 'completion', 'deploy', 'diff', 'flake-update', 'generate', 'init', 'prune', 'reboots', 'rollout', 'status', 'trigger']);
  });

  it('is under 150 lines, and the commands read the user id through their io', () => {
    expect(readFileSync(path.join(PACKAGE_ROOT, 'src', 'cli.ts'), 'utf8').split('\n').length).toBeLessThan(150);
    for (const command of ['deploy', 'rollout', 'build']) {
      expect(readFileSync(path.join(PACKAGE_ROOT, 'src', 'commands', `${command}.ts`), 'utf8'), command).not.toContain('process.getuid');
    }
  });
});
