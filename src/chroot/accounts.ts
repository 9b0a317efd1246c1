/**
 * The server's Unix accounts, read once through getent (so NSS sources such
 * as LDAP count too): each system needs its user, and the group sftp_users.
 */
import { run } from '../exec.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export interface Accounts {
  users: Map<string, Account>;
  /** gid of sftp_users, when the group exists. */
  sftpGroupId?: number;
}

export function parsePasswd(text: string): Map<string, Account> {
  const users = new Map<string, Account>();
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid !== undefined && gid !== undefined) users.set(name, { name, uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

export function parseGroupId(text: string): number | undefined {
  const gid = text.split('\n')[0]?.split(':')[2];
  return gid ? Number(gid) : undefined;
}

export async function readAccounts(names: readonly string[], group: string): Promise<Accounts> {
  const passwd = names.length > 0 ? await run('getent', ['passwd', ...names], { allowFailure: true }) : undefined;
  const groupEntry = await run('getent', ['group', group], { allowFailure: true });
  return { users: parsePasswd(passwd?.stdout ?? ''), sftpGroupId: parseGroupId(groupEntry.stdout) };
}
