/** getent's output, as the deploy reads the server's accounts. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bentoAccountProblem, LIST_ACCOUNTS_FROM, misplacedAccountsWarning, parseGroupId, parsePasswd, readAccounts, readLocalAccounts, type Account, type AccountFiles } from '../../src/chroot/accounts.js';

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

  it('keeps the first entry of a name listed twice (an earlier source of nsswitch.conf), as a lookup by name finds it', () => {
    const users = parsePasswd('nas:x:998:997::/home/chroot/nas:/usr/sbin/nologin\nnas:x:5000:5000::/home/nas:/bin/bash\n');
    expect(users.get('nas')).toMatchObject({ uid: 998, home: '/home/chroot/nas' });
  });
});

describe('readAccounts', () => {
  it('finds the same accounts whether it looks each name up or lists them all (a large fleet), unknown names included', async () => {
    // This machine's own accounts (root, nobody, …) among names no account has.
    const known = ['root', 'nobody', 'daemon', 'bin'];
    const unknown = Array.from({ length: LIST_ACCOUNTS_FROM }, (_, index) => `bento-no-such-user-${index}`);
    const few = await readAccounts([...known, ...unknown.slice(0, 3)], 'root');
    const many = await readAccounts([...unknown.slice(0, 100), ...known, ...unknown.slice(100)], 'root');
    expect(few.users.get('root')).toMatchObject({ name: 'root', uid: 0 });
    expect([...many.users.keys()].sort()).toEqual([...few.users.keys()].sort());
    expect(many.users).toEqual(few.users);
    expect(many.sftpGroupId).toBe(0);
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
    expect(bentoAccountProblem({ ...bentoUser, home: '/srv/other/nas', shell: '/bin/sh' }, '/home/chroot', 997)).toContain(
      'is not a bento SFTP user (its home is /srv/other/nas, not /home/chroot/nas; its shell /bin/sh can log in)',
    );
    // A home that is not <directory>/<name>: someone else's.
    expect(bentoAccountProblem({ ...bentoUser, home: '/var/lib/nas-data' }, '/home/chroot', 997)).toContain('is not a bento SFTP user (its home is /var/lib/nas-data, not /home/chroot/nas)');
    expect(bentoAccountProblem({ ...bentoUser, home: '/nas' }, '/home/chroot', 997)).toContain('is not a bento SFTP user');
  });

  it("says what to do for bento's user of an earlier CHROOT_DIR: apply the server's accounts, which moves the homes", () => {
    expect(bentoAccountProblem({ ...bentoUser, home: '/srv/old-chroot/nas' }, '/home/chroot', 997)).toBe(
      "the user nas is bento's SFTP user of another CHROOT_DIR (its home is /srv/old-chroot/nas, not /home/chroot/nas): CHROOT_DIR changed, and the server's accounts were not applied since; " +
        "apply them, which moves every machine's home into the new CHROOT_DIR: on NixOS, rebuild the server with generated/server/sftp-server.nix; elsewhere, run generated/server/setup-debian.sh as root; then deploy again (README, \"Moving CHROOT_DIR\")",
    );
  });
});

describe('misplacedAccountsWarning', () => {
  it('says nothing when every account is at its uid', () => {
    expect(misplacedAccountsWarning([])).toBeUndefined();
  });

  it('names the first accounts not at the uid of uids.txt, how many more, and how to move them (setup-debian.sh, or usermod -u on NixOS)', () => {
    const misplaced = ['a', 'b', 'c', 'd', 'e'].map((name, i) => ({ name, uid: 990 + i, recorded: 70000 + i }));
    const text = misplacedAccountsWarning(misplaced) ?? '';
    expect(text).toContain("5 SFTP accounts are not at the uid the fleet's uids.txt gives them: a (uid 990, not 70000), b (uid 991, not 70001), c (uid 992, not 70002) and 2 more; deploy still publishes for them");
    expect(text).toContain('run generated/server/setup-debian.sh as root (it runs usermod -u and gives each its logs/)');
    expect(text).toContain('on NixOS, which never renumbers an existing user, run usermod -u <uid> <name> for each, as uids.txt says (usermod -u 70000 a)');
    expect(text).toContain('chown -R -h <uid> CHROOT_DIR/<name>/logs');
  });
});

describe('readLocalAccounts', () => {
  const fixture = (nsswitch: string, passwd: string, group: string): AccountFiles => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-accounts-'));
    cleanups.push(dir);
    const files = { nsswitch: path.join(dir, 'nsswitch.conf'), passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') };
    writeFileSync(files.nsswitch, nsswitch);
    writeFileSync(files.passwd, passwd);
    writeFileSync(files.group, group);
    return files;
  };
  const cleanups: string[] = [];
  afterEach(() => {
    for (const dir of cleanups.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const debian = 'passwd:         files systemd\ngroup:          files systemd # local first\nhosts: files dns\n';
  const passwd = 'root:x:0:0:root:/root:/bin/bash\n# a comment\n\n  alpha:x:1001:993::/srv/chroot/alpha:/usr/sbin/nologin\nalpha:x:2000:2000::/home/alpha:/bin/sh\nbeta:x:1002:993::/srv/chroot/beta:/usr/sbin/nologin\n';
  const group = 'root:x:0:\nsftp_users:x:993:\n';

  it('reads the accounts and the group from the files when NSS asks them first, the first line of a name as glibc does', () => {
    const accounts = readLocalAccounts(['alpha', 'beta'], 'sftp_users', fixture(debian, passwd, group));
    expect(accounts?.sftpGroupId).toBe(993);
    expect(accounts?.users.get('alpha')).toEqual({ name: 'alpha', uid: 1001, gid: 993, home: '/srv/chroot/alpha', shell: '/usr/sbin/nologin' });
    expect(accounts?.users.get('beta')?.uid).toBe(1002);
  });

  it('leaves it to getent when another source comes first, files are followed by an action, or a database is not configured', () => {
    for (const nsswitch of ['passwd: sss files\ngroup: files\n', 'passwd: compat\ngroup: compat\n', 'passwd: files [SUCCESS=continue] ldap\ngroup: files\n', 'group: files\n', 'passwd: files\npasswd: ldap\ngroup: files\n']) {
      expect(readLocalAccounts(['alpha'], 'sftp_users', fixture(nsswitch, passwd, group)), nsswitch).toBeUndefined();
    }
  });

  it('leaves it to getent when an account or the group is not in the files (a later source may hold it), or its line is not well-formed', () => {
    expect(readLocalAccounts(['alpha', 'gamma'], 'sftp_users', fixture(debian, passwd, group))).toBeUndefined();
    expect(readLocalAccounts(['alpha'], 'sftp_users', fixture(debian, passwd, 'root:x:0:\n'))).toBeUndefined();
    expect(readLocalAccounts(['alpha'], 'sftp_users', fixture(debian, 'alpha:x:1001:993::/srv/chroot/alpha\n', group))).toBeUndefined();
    expect(readLocalAccounts(['alpha'], 'sftp_users', fixture(debian, 'alpha:x:uid:993::/srv/chroot/alpha:/usr/sbin/nologin\n', group))).toBeUndefined();
  });

  it('leaves it to getent when a file cannot be read', () => {
    const files = fixture(debian, passwd, group);
    expect(readLocalAccounts(['alpha'], 'sftp_users', { ...files, nsswitch: `${files.nsswitch}.missing` })).toBeUndefined();
  });
});
