import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';

function complete(script: string, words: string[]): string[] {
  const program = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _bento; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', program], { encoding: 'utf8' });
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
  });

  it('has a zsh variant and refuses other shells', () => {
    expect(bento(['completion', 'zsh']).stdout.startsWith('autoload -U +X bashcompinit && bashcompinit\n')).toBe(true);
    const fish = bento(['completion', 'fish']);
    expect(fish.status).toBe(1);
    expect(fish.stderr).toContain('no completion for "fish": use bash or zsh');
  });
});
