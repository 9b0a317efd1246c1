import { describe, expect, it } from 'vitest';
import { parseLogName } from '../../src/protocol/log-name.js';

const HASH = '996vw3r6ajbfh6xjcq2yn7c0z4v1m8ls';

describe('parseLogName', () => {
  it('reads the date, the store path, its hash and the result', () => {
    expect(parseLogName(`20240601-0930_${HASH}-nixos-system-kikimora-24.05.20240601.abcdef0_success.log.gz`)).toEqual({
      ok: true,
      log: {
        stamp: '20240601-0930',
        storeBasename: `${HASH}-nixos-system-kikimora-24.05.20240601.abcdef0`,
        hash: HASH,
        result: 'success',
      },
    });
  });

  it.each(['success', 'failure', 'rollback', 'autoupdate'] as const)('accepts the result %s', (result) => {
    const parsed = parseLogName(`20231231-2359_${HASH}-nixos-system-x_${result}.log.gz`);
    expect(parsed.ok && parsed.log.result).toBe(result);
  });

  it('takes the result from the suffix, not from words inside the machine or store name', () => {
    const parsed = parseLogName(`20240601-1200_${HASH}-nixos-system-success-box_failure.log.gz`);
    expect(parsed).toMatchObject({ ok: true, log: { result: 'failure', storeBasename: `${HASH}-nixos-system-success-box` } });

    const tricky = parseLogName(`20240601-1200_${HASH}-nixos-system-x_success.log.gz_rollback.log.gz`);
    // `.log.gz_rollback`: the store name would hold an underscore-free suffix; the last result wins.
    expect(tricky).toMatchObject({ ok: true, log: { result: 'rollback', storeBasename: `${HASH}-nixos-system-x_success.log.gz` } });
  });

  it('keeps underscores that nix allows in store names', () => {
    const parsed = parseLogName(`20240601-1200_${HASH}-nixos-system-my_host-24.05_autoupdate.log.gz`);
    expect(parsed).toMatchObject({ ok: true, log: { result: 'autoupdate', storeBasename: `${HASH}-nixos-system-my_host-24.05` } });
  });

  it.each([
    ['empty', ''],
    ['no date', `${HASH}-nixos-system-x_success.log.gz`],
    ['short date', `2024061-1200_${HASH}-nixos-system-x_success.log.gz`],
    ['month 13', `20241301-1200_${HASH}-nixos-system-x_success.log.gz`],
    ['30 February', `20240230-1200_${HASH}-nixos-system-x_success.log.gz`],
    ['hour 24', `20240601-2400_${HASH}-nixos-system-x_success.log.gz`],
    ['unknown result', `20240601-1200_${HASH}-nixos-system-x_succeeded.log.gz`],
    ['not gzipped', `20240601-1200_${HASH}-nixos-system-x_success.log`],
    ['short hash', `20240601-1200_${HASH.slice(1)}-nixos-system-x_success.log.gz`],
    ['hash with e (not nix base32)', `20240601-1200_e${HASH.slice(1)}-nixos-system-x_success.log.gz`],
    ['upper case hash', `20240601-1200_${HASH.toUpperCase()}-nixos-system-x_success.log.gz`],
    ['no dash after hash', `20240601-1200_${HASH}nixos-system-x_success.log.gz`],
    ['no store name', `20240601-1200_${HASH}-_success.log.gz`],
    ['no store path', '20240601-1200_success.log.gz'],
    ['newline in name', `20240601-1200_${HASH}-nixos\n-system_success.log.gz`],
    ['escape sequence', `20240601-1200_${HASH}-\x1b[2J_success.log.gz`],
    ['slash', `20240601-1200_${HASH}-a/b_success.log.gz`],
    ['space', `20240601-1200_${HASH}-a b_success.log.gz`],
    ['too long', `20240601-1200_${HASH}-${'a'.repeat(300)}_success.log.gz`],
    ['trailing text', `20240601-1200_${HASH}-nixos-system-x_success.log.gz.part`],
  ])('refuses a name with %s', (_label, name) => {
    const parsed = parseLogName(name);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/\w/);
  });
});
