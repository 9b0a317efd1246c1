/** What each hook was last sent: read back as written, an empty state when there is none, a damaged file refused. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSentState, writeSentState, type SentState } from '../../src/notify/sent-state.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-sent-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STATE: SentState = {
  version: 1,
  hooks: {
    command: {
      machines: { 'web-1': { state: 'failing', why: 'the last update failed', since: '2026-11-26T10:00:00.000Z', drift: true }, db: { state: 'up-to-date', why: '', since: '2026-11-26T09:00:00.000Z' } },
      rollout: { status: 'none', why: '', since: '2026-11-26T09:00:00.000Z' },
    },
  },
};

describe('readSentState and writeSentState', () => {
  it('read back what was written, root-only; nothing yet is an empty state', () => {
    const file = path.join(dir, 'sent.json');
    expect(readSentState(file)).toEqual({ version: 1, hooks: {} });
    writeSentState(file, STATE);
    expect(readSentState(file)).toEqual(STATE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').endsWith('}\n')).toBe(true);
  });

  it.each([
    ['not JSON', '{', 'not JSON; remove it to start again'],
    ['another version', '{"version":2,"hooks":{}}', 'not a bento alert state (version 1)'],
    ['no hooks', '{"version":1}', 'not a bento alert state (version 1)'],
    ['a damaged view', '{"version":1,"hooks":{"url":{"machines":{"a":{"state":1}},"rollout":{"status":"","why":"","since":""}}}}', 'the state of url is damaged'],
    ['a drift that is not a boolean', JSON.stringify({ version: 1, hooks: { command: { ...STATE.hooks.command, machines: { a: { state: 's', why: '', since: '', drift: 'yes' } } } } }), 'the state of command is damaged'],
  ])('refuse %s, naming the file', (_what, text, message) => {
    const file = path.join(dir, 'damaged.json');
    writeFileSync(file, text);
    expect(() => readSentState(file)).toThrow(`${file}: ${message}`);
  });
});
