/**
 * Naming rules. A system name becomes a Unix user name on the server and
 * appears in generated scripts, so it is restricted to what useradd accepts
 * everywhere. Host directory names only need to be safe path components.
 */

import { SYSTEM_NAME } from '../protocol/system-name.js';

export { SYSTEM_NAME };

const HOST_DIR_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/;

/**
 * Names that already belong to accounts on a typical server: a system with
 * such a name would turn an existing account into an SFTP user.
 */
const RESERVED = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', 'gnats', 'nobody', 'sshd', 'messagebus', 'systemd-network',
  'systemd-resolve', 'systemd-timesync', 'nixbld', 'sftp_users', 'bento-eval',
]);

/** Why `name` cannot be a system name, or undefined when it can. */
export function systemNameProblem(name: string): string | undefined {
  if (!SYSTEM_NAME.test(name)) {
    return `${JSON.stringify(name)} is not a valid system name (it must match [a-z_][a-z0-9_-]{0,31}: lower case letters, digits, '_' and '-', at most 32 characters)`;
  }
  if (RESERVED.has(name)) return `${JSON.stringify(name)} is reserved for a system account on the server; pick another name`;
  return undefined;
}

/** Why `name` cannot be a directory under hosts/, or undefined when it can. */
export function hostDirNameProblem(name: string): string | undefined {
  if (!HOST_DIR_NAME.test(name)) {
    return `${JSON.stringify(name)} is not a valid host directory name (use letters, digits, '.', '_' and '-')`;
  }
  return undefined;
}
