/** getent's output, as the deploy reads the server's accounts. */
import { describe, expect, it } from 'vitest';
import { parseGroupId, parsePasswd } from '../../src/chroot/accounts.js';

describe('parsePasswd', () => {
  it('reads name, uid and gid of each line of `getent passwd`', () => {
    const text = 'nas:x:998:997::/home/chroot/nas:/usr/sbin/nologin\nrouter:x:996:997::/home/chroot/router:/usr/sbin/nologin\n';
    expect([...parsePasswd(text).values()]).toEqual([
      { name: 'nas', uid: 998, gid: 997 },
      { name: 'router', uid: 996, gid: 997 },
    ]);
  });

  it('skips blank and truncated lines', () => {
    expect(parsePasswd('\nbroken\nonly:x\n').size).toBe(0);
  });
});

describe('parseGroupId', () => {
  it('reads the gid of `getent group sftp_users`, or nothing when the group is missing', () => {
    expect(parseGroupId('sftp_users:x:997:\n')).toBe(997);
    expect(parseGroupId('sftp_users:x:997:nas,router\n')).toBe(997);
    expect(parseGroupId('')).toBeUndefined();
  });
});
