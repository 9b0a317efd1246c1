/**
 * The server's Unix accounts, read once as NSS answers them (so sources such
 * as LDAP count too): each system needs its user, and the group sftp_users.
 * When NSS asks /etc/passwd and /etc/group first and finds every account
 * there, they are read here, as its `files` module reads them, without
 * starting getent (readLocalAccounts); otherwise getent answers.
 * Deploy touches only the chroots of bento's own SFTP users: an account of
 * the same name that bento's server setup did not make (a service account,
 * a person's) is refused, never taken over.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface Accounts {
  users: Map<string, Account>;
  /** gid of sftp_users, when the group exists. */
  sftpGroupId?: number;
}

/** `getent passwd` lines: name:password:uid:gid:gecos:home:shell. A name listed twice keeps its first entry: the one a lookup by name finds. */
export function parsePasswd(text: string): Map<string, Account> {
  const users = new Map<string, Account>();
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const [name, , uid, gid] = fields;
    if (name && uid !== undefined && gid !== undefined && !users.has(name)) users.set(name, accountOf(fields));
  }
  return users;
}

/** The account of a passwd line's fields. */
function accountOf([name = '', , uid, gid, , home = '', shell = '']: readonly string[]): Account {
  return { name, uid: Number(uid), gid: Number(gid), home, shell };
}

/**
 * Shells that cannot log in. Debian's useradd gives /usr/sbin/nologin; NixOS
 * gives a system user pkgs.shadow's nologin, which /etc/passwd names
 * /run/current-system/sw/bin/nologin (nixos/modules/config/users-groups.nix,
 * option `shell`).
 */
const NO_LOGIN_SHELLS = new Set(['nologin', 'false']);

/**
 * Why `account` is not a bento SFTP user of this CHROOT_DIR, or undefined:
 * bento's server setup (setup-debian.sh, sftp-server.nix) gives each one the
 * primary group sftp_users, the home CHROOT_DIR/<name> and a shell that
 * cannot log in.
 */
export function bentoAccountProblem(account: Account, chrootDir: string, sftpGroupId: number): string | undefined {
  const why: string[] = [];
  const home = path.join(chrootDir, account.name);
  const homeMoved = path.resolve(account.home || '/') !== path.resolve(home);
  if (account.gid !== sftpGroupId) why.push(`its primary group is gid ${account.gid}, not sftp_users`);
  if (homeMoved) why.push(`its home is ${account.home || '(none)'}, not ${home}`);
  if (!NO_LOGIN_SHELLS.has(path.basename(account.shell))) why.push(`its shell ${account.shell || '(none)'} can log in`);
  if (why.length === 0) return undefined;
  // Only its home differs, and that home is <another directory>/<name>:
  // bento's user, set up for an earlier CHROOT_DIR. The server's setup
  // moves it (setup-debian.sh: usermod --home; NixOS: the declared home).
  if (why.length === 1 && homeMoved && isOtherChrootHome(account)) {
    return (
      `the user ${account.name} is bento's SFTP user of another CHROOT_DIR (its home is ${account.home}, not ${home}): ` +
      `CHROOT_DIR changed, and the server's accounts were not applied since; ${MOVE_HOMES_HINT}`
    );
  }
  return `the user ${account.name} exists and is not a bento SFTP user (${why.join('; ')}): deploy only touches the chroots of bento's own users; rename the system, or remove that account if it is a leftover`;
}

/** A bento account whose uid is not the one uids.txt gives it. */
export interface MisplacedAccount {
  name: string;
  uid: number;
  /** Its uid in the fleet's uids.txt. */
  recorded: number;
}

/**
 * The warning for bento accounts that are still accepted but not at the uid
 * the fleet's uids.txt records for them: made as system accounts by an
 * earlier bento (Debian's system range, 100–999, shared with the server's
 * packages, holds a few hundred), or under another SFTP_UIDS. One line for
 * them all, naming the first few, and how to move them.
 */
export function misplacedAccountsWarning(misplaced: readonly MisplacedAccount[]): string | undefined {
  if (misplaced.length === 0) return undefined;
  const shown = misplaced.slice(0, 3).map((account) => `${account.name} (uid ${account.uid}, not ${account.recorded})`);
  const more = misplaced.length > shown.length ? ` and ${misplaced.length - shown.length} more` : '';
  const first = misplaced[0];
  const example = first ? ` (usermod -u ${first.recorded} ${first.name})` : '';
  return (
    `${misplaced.length === 1 ? 'an SFTP account is' : `${misplaced.length} SFTP accounts are`} not at the uid the fleet's uids.txt gives ${misplaced.length === 1 ? 'it' : 'them'}: ${shown.join(', ')}${more}; ` +
    `deploy still publishes for ${misplaced.length === 1 ? 'it' : 'them'}. Move them: run generated/server/setup-debian.sh as root (it runs usermod -u and gives each its logs/); ` +
    `on NixOS, which never renumbers an existing user, run usermod -u <uid> <name> for each, as uids.txt says${example}, when it has no SFTP session open, ` +
    'then give it its logs/, which usermod leaves alone in a chroot owned by root: chown -R -h <uid> CHROOT_DIR/<name>/logs'
  );
}

/** What moves bento's users to a new CHROOT_DIR. */
export const MOVE_HOMES_HINT =
  'apply them, which moves every machine\'s home into the new CHROOT_DIR: on NixOS, rebuild the server with generated/server/sftp-server.nix; elsewhere, run generated/server/setup-debian.sh as root; then deploy again (README, "Moving CHROOT_DIR")';

/** A home `<directory>/<name>` (not `/`<name>): where bento puts a system's chroot, in some CHROOT_DIR. */
function isOtherChrootHome(account: Account): boolean {
  const home = path.resolve(account.home || '/');
  return path.basename(home) === account.name && path.dirname(home) !== '/';
}

export function parseGroupId(text: string): number | undefined {
  const gid = text.split('\n')[0]?.split(':')[2];
  return gid ? Number(gid) : undefined;
}

/**
 * From this many names, every account is listed once (`getent passwd`)
 * instead of each looked up: glibc's files source reads /etc/passwd from
 * its start for each name asked, which grows with the square of the fleet
 * (bench/README.md).
 */
export const LIST_ACCOUNTS_FROM = 256;

/** Where NSS's configuration and its `files` databases are (tests give their own). */
export interface AccountFiles {
  nsswitch: string;
  passwd: string;
  group: string;
}

const SYSTEM_ACCOUNT_FILES: AccountFiles = { nsswitch: '/etc/nsswitch.conf', passwd: '/etc/passwd', group: '/etc/group' };

/**
 * The accounts of `names` and the gid of `group` read from the files, when
 * that is what getent would answer: nsswitch.conf names `files` first for
 * both databases (with no action after it: on success NSS returns its
 * answer), and every account and the group are found there, on a well-formed
 * line (the first of that name, as glibc's files module takes it).
 * Undefined otherwise (a name found only in a later source such as LDAP or
 * systemd's userdb, `compat`, an unusual line, a file that cannot be read):
 * getent is asked then.
 */
export function readLocalAccounts(names: readonly string[], group: string, files: AccountFiles = SYSTEM_ACCOUNT_FILES): Accounts | undefined {
  let nsswitch: string;
  let passwdText: string;
  let groupText: string;
  try {
    nsswitch = readFileSync(files.nsswitch, 'utf8');
    passwdText = readFileSync(files.passwd, 'utf8');
    groupText = readFileSync(files.group, 'utf8');
  } catch {
    return undefined;
  }
  if (!filesFirst(nsswitch, 'passwd') || !filesFirst(nsswitch, 'group')) return undefined;
  const wanted = new Set(names);
  const users = firstEntries(passwdText, wanted, 7);
  const groups = firstEntries(groupText, new Set([group]), 4);
  if (!users || !groups || users.size !== wanted.size || !groups.has(group)) return undefined;
  const accounts = new Map<string, Account>();
  for (const [name, fields] of users) accounts.set(name, accountOf(fields));
  return { users: accounts, sftpGroupId: Number(groups.get(group)?.[2]) };
}

/** Whether nsswitch.conf's one line for `database` names `files` first, with no action after it. */
function filesFirst(nsswitch: string, database: string): boolean {
  const lines = nsswitch
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line.split(':')[0]?.trim().toLowerCase() === database);
  if (lines.length !== 1) return false;
  const sources = (lines[0] as string).slice((lines[0] as string).indexOf(':') + 1).trim().split(/\s+/);
  return sources[0] === 'files' && !(sources[1] ?? '').startsWith('[');
}

const ID = /^[0-9]+$/;

/**
 * The first line of each of `wanted` in a passwd or group file (leading
 * blanks, empty and comment lines skipped, as glibc's files module does),
 * split into its fields; undefined when such a line does not have `fields`
 * fields with a numeric id (and, for passwd, gid).
 */
function firstEntries(text: string, wanted: ReadonlySet<string>, fields: number): Map<string, string[]> | undefined {
  const found = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    const name = parts[0] as string;
    if (!wanted.has(name) || found.has(name)) continue;
    if (parts.length !== fields || !ID.test(parts[2] ?? '') || (fields === 7 && !ID.test(parts[3] ?? ''))) return undefined;
    found.set(name, parts);
    if (found.size === wanted.size) break;
  }
  return found;
}

/**
 * The accounts of `names` and the gid of `group`. Each name is looked up
 * through NSS, as sshd finds it. Many names: every account is listed
 * once, each name taking its first entry (the sources in nsswitch.conf's
 * order, as a lookup by name finds it), and the names not listed are then
 * looked up by name, in one more call: a source that lists nothing (LDAP
 * through sssd without enumerate) still answers for them.
 * The files are read first, when they are NSS's answer (readLocalAccounts).
 */
export async function readAccounts(names: readonly string[], group: string, files: AccountFiles = SYSTEM_ACCOUNT_FILES): Promise<Accounts> {
  // From the files when that is NSS's answer: no process to start (a deploy with nothing to do would wait for two).
  const local = readLocalAccounts(names, group, files);
  if (local) return local;
  // Both at once: each is a process start, which a deploy with nothing to do waits for.
  const [users, groupEntry] = await Promise.all([readUsers(names), run('getent', ['group', group], { allowFailure: true })]);
  return { users, sftpGroupId: parseGroupId(groupEntry.stdout) };
}

async function readUsers(names: readonly string[]): Promise<Map<string, Account>> {
  const lookUp = async (some: readonly string[]) => (some.length > 0 ? parsePasswd((await run('getent', ['passwd', ...some], { allowFailure: true })).stdout) : new Map<string, Account>());
  if (names.length < LIST_ACCOUNTS_FROM) return await lookUp(names);
  const listed = parsePasswd((await run('getent', ['passwd'], { allowFailure: true })).stdout);
  const users = new Map<string, Account>();
  const missing: string[] = [];
  for (const name of names) {
    const account = listed.get(name);
    if (account) users.set(name, account);
    else missing.push(name);
  }
  for (const [name, account] of await lookUp(missing)) users.set(name, account);
  return users;
}
