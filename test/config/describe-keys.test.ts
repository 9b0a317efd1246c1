/** The keys for people: the --help list, init's config.sh comments and the reference page, from a spec. */
import { describe, expect, it } from 'vitest';
import { configKeysHelp, configReferencePage, helpLine, initComment, initEntries } from '../../src/config/describe-keys.js';
import type { KeySpec } from '../../src/config/schema.js';

const spec = (fields: Partial<KeySpec>): KeySpec => ({ field: 'f', type: 'seconds', parse: (raw) => raw, shown: '20', doc: 'How long to wait', example: '20', ...fields });

describe('describing config keys', () => {
  it('helpLine and configKeysHelp: the doc line and the default, names aligned', () => {
    expect(helpLine(spec({}))).toBe('How long to wait (20)');
    expect(configKeysHelp([{ name: 'A', spec: spec({ doc: 'one' }) }, { name: 'LONGER', spec: spec({ doc: 'two', shown: 'none' }) }])).toBe('  A       one (20)\n  LONGER  two (none)');
  });

  it('initComment: the doc line, its default, then the details, wrapped at 76 columns', () => {
    const details = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const comment = initComment(spec({ details }));
    expect(comment.startsWith('How long to wait (20). word0 word1')).toBe(true);
    expect(comment.split('\n').length).toBeGreaterThan(1);
    for (const line of comment.split('\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(comment.replace(/\n/g, ' ')).toBe(`How long to wait (20). ${details}`);
    expect(initComment(spec({}))).toBe('How long to wait (20).');
  });

  it('initEntries: each key with its comment, its example and whether init sets it', () => {
    expect(initEntries([{ name: 'TIMEOUT', spec: spec({ initSet: true }) }, { name: 'OTHER', spec: spec({ example: 'a b' }) }])).toEqual([
      { name: 'TIMEOUT', comment: 'How long to wait (20).', value: '20', set: true },
      { name: 'OTHER', comment: 'How long to wait (20).', value: 'a b', set: false },
    ]);
  });

  it('configReferencePage: a table linking to a section per key; an example with spaces quoted; | escaped in the table', () => {
    const page = configReferencePage([{ name: 'REBUILD_ARGS', spec: spec({ type: 'words', shown: 'a|b', doc: 'Arguments', details: 'More.', example: '--fallback --option' }) }]);
    expect(page).toContain('| [REBUILD_ARGS](#rebuild_args) | a\\|b | Arguments |\n');
    expect(page).toContain('## REBUILD_ARGS\n\nArguments. More.\n\n- type: words\n- default: a|b\n- example: `REBUILD_ARGS="--fallback --option"`\n');
    expect(page.startsWith('# config.sh keys\n')).toBe(true);
  });
});
