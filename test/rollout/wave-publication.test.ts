import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forgetInRollout } from '../../src/rollout/wave-publication.js';
import { readRolloutState } from '../../src/protocol/rollout-file.js';
import { writtenRolloutState as written } from '../helpers/rollout-state.js';

describe('systems that leave the fleet leave the rollout (forgetInRollout)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-rollout-forget-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drops them from the systems, the holds and the halt; a rollout left with no system ends', () => {
    writeFileSync(path.join(dir, 'rollout.json'), `${JSON.stringify(written(), null, 2)}\n`);
    expect(forgetInRollout(dir, ['web-1', 'db', 'not-in-it'])).toEqual(['web-1', 'db']);
    const after = readRolloutState(dir);
    expect(Object.keys(after?.systems ?? {})).toEqual(['canary']);
    expect(after?.held).toBeUndefined();
    expect(after?.halt?.systems).toEqual([]);
    expect(forgetInRollout(dir, ['not-in-it'])).toEqual([]);
    expect(forgetInRollout(dir, ['canary'])).toEqual(['canary']);
    expect(readRolloutState(dir)).toBeUndefined();
  });
});
