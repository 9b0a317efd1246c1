/**
 * System names (docs/protocol.md §2): a system's name is its directory in
 * CHROOT_DIR, its line in states.txt, its Unix user on the server and a word
 * in generated scripts, so it is restricted to what useradd accepts
 * everywhere. The one rule for every stage that writes or reads one.
 */

export const SYSTEM_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Names that already belong to accounts on a typical server: a system with
 * such a name would turn an existing account into an SFTP user.
 */
const RESERVED = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', 'gnats', 'nobody', 'sshd', 'messagebus', 'systemd-network',
  'systemd-resolve', 'systemd-timesync', 'nixbld', 'sftp_users',
]);

/** Why `name` cannot be a system name, or undefined when it can. */
export function systemNameProblem(name: string): string | undefined {
  if (!SYSTEM_NAME.test(name)) {
    return `${JSON.stringify(name)} is not a valid system name (it must match [a-z_][a-z0-9_-]{0,31}: lower case letters, digits, '_' and '-', at most 32 characters)`;
  }
  if (RESERVED.has(name)) return `${JSON.stringify(name)} is reserved for a system account on the server; pick another name`;
  return undefined;
}
