/** A rollout.json state for the tests of its parser and its writers. */
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { storePath } from '../status/fixtures.js';

/** A state as deploy and `bento rollout abort` write it, every optional field present. */
export function writtenRolloutState(): RolloutState {
  return {
    version: 1,
    startedAt: '2026-11-26T10:00:00.000Z',
    waves: [['canary'], ['web-*', 'db'], ['*']],
    current: 1,
    status: 'aborted',
    halt: { at: '2026-11-26T11:00:00.000Z', reason: 'aborted, the current wave reverted', systems: ['web-1'] },
    systems: {
      canary: {
        wave: 0,
        exact: true,
        target: storePath('cnw'),
        version: '.config-0123456789abcdef',
        digest: 'a'.repeat(64),
        previous: { version: '.config-fedcba9876543210-1', target: storePath('cld') },
        publishedAt: '2026-11-26T10:00:00.000Z',
      },
      'web-1': { wave: 1, exact: false, target: storePath('wnw'), version: '.config-0123456789abcdee', digest: 'b'.repeat(64), previous: {} },
    },
    held: { db: { digest: 'c'.repeat(64), at: '2026-11-26T11:00:00.000Z', why: 'reverted' } },
  };
}
