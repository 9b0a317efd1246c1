// The server's accounts a deploy needs (as root): the group sftp_users and
// one user per system, homed in CHROOT_DIR, as bento's server setup makes
// them. Made once for a whole run and removed at its end, the group only
// when this run made it and no account uses it any more (a test run on the
// same machine may hold it: test/e2e/lib/cleanup.sh does the same).
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';

const GROUP = 'sftp_users';

/** Blocks for `ms`: cleaning up runs synchronously, from a signal handler too. */
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** useradd and userdel refuse while another process holds /etc/passwd's lock: try again a few times. */
function retried(tool, args) {
  for (let attempt = 0; ; attempt++) {
    const run = spawnSync(tool, args, { encoding: 'utf8' });
    if (run.status === 0) return;
    if (attempt >= 20) throw new Error(`${tool} ${args.join(' ')}: ${run.stderr.trim()}`);
    pause(100 + attempt * 50);
  }
}

export class Accounts {
  constructor(chrootDir) {
    this.chrootDir = chrootDir;
    this.users = [];
    this.madeGroup = false;
  }

  ensureGroup() {
    if (spawnSync('getent', ['group', GROUP]).status === 0) return;
    execFileSync('groupadd', ['--system', GROUP]);
    this.madeGroup = true;
  }

  /** A user for each of `names` not made yet (not system accounts: 800 of them would not fit Debian's system range). */
  add(names) {
    this.ensureGroup();
    for (const name of names) {
      if (this.users.includes(name)) continue;
      retried('useradd', ['--no-create-home', '--home-dir', path.join(this.chrootDir, name), '--gid', GROUP, '--shell', '/usr/sbin/nologin', name]);
      this.users.push(name);
    }
  }

  removeAll() {
    for (const name of this.users.splice(0)) {
      // No process runs as these users (nothing logs in): userdel alone.
      try {
        retried('userdel', [name]);
      } catch (error) {
        process.stderr.write(`bench: ${error.message}\n`);
      }
    }
    if (this.madeGroup) {
      const group = spawnSync('getent', ['group', GROUP], { encoding: 'utf8' }).stdout.trim();
      const gid = group.split(':')[2];
      const usedAsPrimary = spawnSync('getent', ['passwd'], { encoding: 'utf8' }).stdout.split('\n').some((line) => line.split(':')[3] === gid);
      if (group && !usedAsPrimary && !group.split(':')[3]) spawnSync('groupdel', [GROUP]);
      this.madeGroup = false;
    }
  }
}
