/**
 * rollout.json's one parser (docs/protocol.md §10): every field is read back
 * as its writer writes it. A field of each kind is given a value bento never
 * writes — a path for a version directory, a time in another form, a text
 * with control characters, an unknown key — and the file is refused with a
 * message naming the field.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRolloutState, readRolloutState } from '../../src/protocol/rollout-file.js';
import { UserError } from '../../src/errors.js';
import { storePath } from '../status/fixtures.js';
import { writtenRolloutState as written } from '../helpers/rollout-state.js';

/** The state with one field set to `value` (undefined: removed), as JSON text. */
function withField(pathOfField: (string | number)[], value: unknown): string {
  const state = written() as unknown as Record<string | number, unknown>;
  let node = state;
  for (const key of pathOfField.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = pathOfField[pathOfField.length - 1] as string | number;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return JSON.stringify(state);
}

describe('parseRolloutState', () => {
  it('reads back what bento writes, field for field', () => {
    expect(parseRolloutState(JSON.stringify(written()))).toEqual(written());
    const bare = written();
    delete bare.halt;
    delete bare.held;
    expect(parseRolloutState(JSON.stringify(bare))).toEqual(bare);
  });

  it.each([
    // version directories: root opens <chroot>/<name>/<version>/.bento-manifest
    [['systems', 'canary', 'previous', 'version'], '../../../../etc', 'systems.canary.previous.version is not a version directory name'],
    [['systems', 'canary', 'version'], '.config-0123456789abcdef/../../x', 'systems.canary.version is not a version directory name'],
    [['systems', 'canary', 'previous', 'version'], 7, 'systems.canary.previous.version is not a version directory name'],
    // store path basenames: written into states.txt
    [['systems', 'canary', 'previous', 'target'], '../etc/passwd', 'systems.canary.previous.target is not a store path basename'],
    [['systems', 'canary', 'target'], `${storePath('cnw')}\nevil=1`, 'systems.canary.target is not a store path basename'],
    // digests
    [['systems', 'canary', 'digest'], 'A'.repeat(64), 'systems.canary.digest is not a sha256'],
    [['held', 'db', 'digest'], 'c'.repeat(63), 'held.db.digest is not a sha256'],
    // times, as Date.toISOString() writes them
    [['startedAt'], 'Tuesday', 'startedAt is not a time as bento writes it'],
    [['systems', 'canary', 'publishedAt'], '2026-11-26', 'systems.canary.publishedAt is not a time'],
    [['halt', 'at'], '2026-02-30T10:00:00.000Z', 'halt.at is not a time'],
    [['held', 'db', 'at'], 1764151200000, 'held.db.at is not a time'],
    // wave indexes
    [['current'], 3, 'current is not a wave index below 3'],
    [['current'], -1, 'current is not a wave index'],
    [['systems', 'web-1', 'wave'], 1.5, 'systems.web-1.wave is not a wave index'],
    // choices
    [['status'], 'paused', 'status is not one of running, halted, done, aborted'],
    [['held', 'db', 'why'], 'because', 'held.db.why is not one of aborted, reverted'],
    [['systems', 'canary', 'exact'], 'yes', 'systems.canary.exact is not true or false'],
    // system names: each becomes a chroot directory
    [['systems', '../../etc'], written().systems['web-1'], 'a name in systems is not a system name'],
    [['held', 'ROOT'], written().held?.['db'], 'a name in held is not a system name'],
    [['halt', 'systems'], ['web-1', 'a b'], 'halt.systems[1] is not a system name'],
    // texts printed to a terminal
    [['halt', 'reason'], 'aborted\u001b]0;owned\u0007', 'halt.reason is not a line of text'],
    [['waves', 1, 0], 'web-*\u001b[2J', 'waves[1][0] is not a wave member of ROLLOUT_WAVES'],
    [['waves'], [], 'waves is not a list of waves'],
    // structure
    [['systems', 'canary', 'previous'], 'none', 'systems.canary.previous is not an object'],
    [['systems', 'canary', 'extra'], 1, 'systems.canary has a field bento does not write: "extra"'],
    [['owner'], 'root', 'the file has a field bento does not write: "owner"'],
    [['version'], 2, 'version is not the version of bento rollout state (1)'],
    [['systems'], undefined, 'systems is not an object'],
  ])('refuses %j = %j, naming the field', (pathOfField, value, message) => {
    expect(() => parseRolloutState(withField(pathOfField as (string | number)[], value))).toThrow(message);
  });

  it('refuses a file that is not JSON', () => {
    expect(() => parseRolloutState('{"version": 1,')).toThrow(/^not JSON: /);
  });

  it('never gives an object a prototype from the file', () => {
    const text = JSON.stringify(written()).replace('"web-1":', '"__proto__":');
    const state = parseRolloutState(text);
    expect(Object.getPrototypeOf(state.systems)).toBe(Object.prototype);
    expect(Object.keys(state.systems).sort()).toEqual(['__proto__', 'canary']);
  });
});

describe('readRolloutState', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-rollout-state-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the damaged file and the way out, which is not "deploy again" (deploy refuses it too)', () => {
    writeFileSync(path.join(dir, 'rollout.json'), withField(['systems', 'canary', 'previous', 'version'], '../../../../etc'));
    let error: unknown;
    try {
      readRolloutState(dir);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`${path.join(dir, 'rollout.json')} is damaged: systems.canary.previous.version is not a version directory name (.config-<16 hex digits>) (found "../../../../etc")`);
    expect((error as UserError).hint).toMatch(/^remove it to forget that rollout/);
    expect(`${(error as UserError).message} ${(error as UserError).hint}`).not.toContain('deploy again');
  });

  it('names a rollout.json it cannot read (a directory in its place), whose error names no file', () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'bento-rollout-state-'));
    try {
      mkdirSync(path.join(other, 'rollout.json'));
      expect(() => readRolloutState(other)).toThrow(new UserError(`cannot read ${path.join(other, 'rollout.json')}: EISDIR: illegal operation on a directory, read`));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
