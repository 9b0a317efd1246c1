/** getent's output, as the deploy reads the server's accounts. */
import { describe, expect, it } from 'vitest';
import { bentoAccountProblem, parseGroupId, parsePasswd, type Account } from '../../src/chroot/accounts.js';

describe('parsePasswd', () => {
  it('reads name, uid, gid, home and shell of each line of `getent passwd`', () => {
    const text = 'nas:x:998:997::/home/chroot/nas:/usr/sbin/nologin\nrouter:x:996:997::/home/chroot/router:/run/current-system/sw/bin/nologin\n';
    expect([...parsePasswd(text).values()]).toEqual([
      { name: 'nas', uid: 998, gid: 997, home: '/home/chroot/nas', shell: '/usr/sbin/nologin' },
      { name: 'router', uid: 996, gid: 997, home: '/home/chroot/router', shell: '/run/current-system/sw/bin/nologin' },
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

describe('bentoAccountProblem', () => {
  const bentoUser: Account = { name: 'nas', uid: 998, gid: 997, home: '/home/chroot/nas', shell: '/usr/sbin/nologin' };

  it('accepts the users of setup-debian.sh and of sftp-server.nix (NixOS names nologin through /run/current-system)', () => {
    expect(bentoAccountProblem(bentoUser, '/home/chroot', 997)).toBeUndefined();
    expect(bentoAccountProblem({ ...bentoUser, shell: '/run/current-system/sw/bin/nologin' }, '/home/chroot/', 997)).toBeUndefined();
    expect(bentoAccountProblem({ ...bentoUser, shell: '/bin/false' }, '/home/chroot', 997)).toBeUndefined();
  });

  it('refuses a service account or a person, saying each way it is not bento\'s', () => {
    const postgres: Account = { name: 'postgres', uid: 105, gid: 112, home: '/var/lib/postgresql', shell: '/bin/bash' };
    expect(bentoAccountProblem(postgres, '/home/chroot', 997)).toBe(
      "the user postgres exists and is not a bento SFTP user (its primary group is gid 112, not sftp_users; its home is /var/lib/postgresql, not /home/chroot/postgres; its shell /bin/bash can log in): deploy only touches the chroots of bento's own users; rename the system, or remove that account if it is a leftover",
    );
    expect(bentoAccountProblem({ ...bentoUser, home: '/srv/other/nas' }, '/home/chroot', 997)).toContain('its home is /srv/other/nas, not /home/chroot/nas');
  });
});
