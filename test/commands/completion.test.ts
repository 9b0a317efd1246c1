import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';

/** A fleet whose last bento generate wrote the systems alpha and beta. */
const fleet = mkdtempSync(path.join(os.tmpdir(), 'bento-completion-'));
for (const name of ['alpha', 'beta']) mkdirSync(path.join(fleet, 'generated', 'systems', name), { recursive: true });
afterAll(() => rmSync(fleet, { recursive: true, force: true }));

function complete(script: string, words: string[], env: Record<string, string> = {}): string[] {
  const program = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _bento; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', program], { encoding: 'utf8', cwd: os.tmpdir(), env: { ...process.env, BENTO_DIR: '', ...env } });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter(Boolean);
}

describe('bento completion', () => {
  const bash = bento(['completion', 'bash']).stdout;

  it('completes commands, their arguments and options, after global options', () => {
    expect(complete(bash, ['bento', 'de'])).toEqual(['deploy']);
    expect(complete(bash, ['bento', '--dir', '/x', 'build', 'sw'])).toEqual(['switch']);
    expect(complete(bash, ['bento', 'deploy', '--ma'])).toEqual(['--max-jobs']);
    expect(complete(bash, ['bento', 'status', '--'])).toEqual(['--once', '--json', '--prometheus', '--no-cache', '--help']);
    expect(complete(bash, ['bento', 'tr'])).toEqual(['trigger']);
    expect(complete(bash, ['bento', 'trigger', '--'])).toEqual(['--all', '--timeout', '--help']);
    expect(complete(bash, ['bento', 'prune', '--'])).toEqual(['--keep', '--dry-run', '--help']);
    expect(complete(bash, ['bento', 'completion', ''])).toEqual(['bash', 'zsh', 'fish', '--help']);
  });

  it("offers the fleet's system names (those bento generate wrote) for --name and for the names trigger and prune take", () => {
    expect(complete(bash, ['bento', '--dir', fleet, 'deploy', '--name', ''])).toEqual(['alpha', 'beta']);
    expect(complete(bash, ['bento', `--dir=${fleet}`, 'build', '-n', 'a'])).toEqual(['alpha']);
    // --name takes several: its values run until the next option.
    expect(complete(bash, ['bento', '-d', fleet, 'diff', '--name', 'alpha', 'b'])).toEqual(['beta']);
    // Another option ends them: the build's words again.
    expect(complete(bash, ['bento', '-d', fleet, 'build', '--name', 'alpha', '--verbose', ''])).toEqual(complete(bash, ['bento', 'build', '']));
    expect(complete(bash, ['bento', 'build', ''])).not.toContain('alpha');
    // BENTO_DIR when there is no --dir; the names and the options of trigger.
    expect(complete(bash, ['bento', 'trigger', ''], { BENTO_DIR: fleet })).toEqual(['alpha', 'beta', '--all', '--timeout', '--help']);
    expect(complete(bash, ['bento', 'prune', 'be'], { BENTO_DIR: fleet })).toEqual(['beta']);
    // The value of another option is not a name; a directory that is not a fleet has none.
    expect(complete(bash, ['bento', '-d', fleet, 'deploy', '--jobs', ''])).toEqual([]);
    expect(complete(bash, ['bento', 'trigger', '--timeout', ''], { BENTO_DIR: fleet })).toEqual([]);
    expect(complete(bash, ['bento', 'trigger', 'a'], { BENTO_DIR: path.join(fleet, 'generated') })).toEqual([]);
  });

  it('has a zsh variant (bash through bashcompinit) and a fish one; refuses other shells', () => {
    expect(bento(['completion', 'zsh']).stdout.startsWith('autoload -U +X bashcompinit && bashcompinit\n')).toBe(true);
    const tcsh = bento(['completion', 'tcsh']);
    expect(tcsh.status).toBe(1);
    expect(tcsh.stderr).toContain('no completion for "tcsh": use bash, zsh or fish');
  });

  it('fish completes the commands, their options and arguments, and the system names, as fish itself runs it', () => {
    const script = path.join(fleet, 'bento.fish');
    writeFileSync(script, bento(['completion', 'fish']).stdout);
    const fish = (line: string, env: Record<string, string> = {}) => {
      const run = spawnSync('fish', ['--no-config', '-c', `source ${script}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8', cwd: os.tmpdir(), env: { ...process.env, BENTO_DIR: '', HOME: fleet, ...env } });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      return run.stdout.split('\n').filter(Boolean).map((candidate) => candidate.split('\t')[0]);
    };
    expect(fish('bento de')).toEqual(['deploy']);
    expect(fish('bento build s')).toEqual(['switch']);
    expect(fish('bento status --o')).toEqual(['--once']);
    expect(fish(`bento --dir ${fleet} deploy --name `)).toEqual(['alpha', 'beta']);
    expect(fish(`bento --dir=${fleet} build -n b`)).toEqual(['beta']);
    expect(fish('bento trigger a', { BENTO_DIR: fleet })).toEqual(['alpha']);
    expect(fish('bento rollout ')).toEqual(['abort', 'advance', 'resume', 'status']);
  });
});
