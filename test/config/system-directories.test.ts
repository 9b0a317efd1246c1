/** Directories of the system that must never be CHROOT_DIR: one rule for config.sh and deploy. */
import { describe, expect, it } from 'vitest';
import { systemDirectoryProblem } from '../../src/config/system-directories.js';

describe('systemDirectoryProblem', () => {
  it.each(['/', '/tmp', '/tmp/', '/home', '/etc//', '/var/lib', '/usr/local', '/proc/self', '/sys/kernel', '/dev/shm', '/nix/store/abc-x', '/srv/../tmp'])('refuses %s, naming the directory', (dir) => {
    expect(systemDirectoryProblem(dir)).toMatch(/ is a directory of the system itself/);
  });

  it.each(['/srv/bento', '/home/chroot', '/tmp/bento', '/var/lib/bento', '/nix/bento'])('accepts %s', (dir) => {
    expect(systemDirectoryProblem(dir)).toBeUndefined();
  });

  it('also refuses a directory of its own that leads to a system directory', () => {
    expect(systemDirectoryProblem('/srv/bento', '/home')).toBe('/home is a directory of the system itself; each machine\'s chroot would be a directory in it (CHROOT_DIR/<name>)');
    expect(systemDirectoryProblem('/srv/bento', '/data/bento')).toBeUndefined();
  });
});
