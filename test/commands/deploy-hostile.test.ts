/**
 * bento deploy turned against its own server (issue 14): what a fleet writer
 * who is not root on the server could try, and faults. Real Nix, real users,
 * real chroots; each rule has its reproduction.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { sha256 } from '../../src/util/hash.js';
import { bento, CLI } from '../helpers/cli.js';
import { flakeText, testKey, type TestFleet } from '../helpers/fleet.js';
import { NIX_ENV, removeDeployCaches, snapshotTree, useTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';

const NIX = ['--extra-experimental-features', 'nix-command flakes'];

const suite = useTestServer();
const { n } = suite;

const newFleet = suite.fleet;

function deploy(fleet: TestFleet, env: Record<string, string> = {}) {
  return bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV, ...env } });
}

function states(chrootDir = suite.server.chrootDir): Record<string, string> {
  const file = path.join(chrootDir, 'states.txt');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return Object.fromEntries(text.trim().split('\n').filter(Boolean).map((line) => line.split('=') as [string, string]));
}

/** config/ of a system passes the machine's own check (sha256sum -c of its manifest). */
function manifestHolds(name: string, chrootDir = suite.server.chrootDir): boolean {
  return spawnSync('sha256sum', ['-c', '--strict', '--quiet', '.bento-manifest'], { cwd: path.join(chrootDir, name, 'config') }).status === 0;
}

/** Runs a command as another user (uid/gid), without supplementary groups. */
function runAs(uid: number, gid: number, command: string[]) {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...command], { encoding: 'utf8' });
}

describe.skipIf(!isRoot)('deploy refuses what would publish the server itself', () => {
  it('symbolic links out of the fleet (file, directory, /proc), relative or absolute: that host fails, naming link and target, before anything is evaluated', () => {
    const fleet = newFleet({ laptop: { flake: [n('laptop')], utils: true }, other: { flake: [n('other')] } });
    suite.server.addUsers([n('laptop'), n('other')]);
    const cases: [string, string, string][] = [
      ['shadow', '/etc/shadow', 'a file, absolute'],
      ['sshdir', '../../../../../../../../etc/ssh', 'a directory, relative'],
      ['environ', '/proc/self/environ', 'a file of /proc'],
    ];
    const laptopDir = path.join(suite.server.chrootDir, n('laptop'));
    for (const [link, target, what] of cases) {
      symlinkSync(target, path.join(fleet.root, 'hosts', 'laptop', link));
      const run = deploy(fleet);
      expect(run.status, what).toBe(1);
      expect(run.stderr, what).toContain(`error: hosts/laptop: ${link} is a symbolic link to ${target}, outside the fleet directory`);
      // The other host is published; nothing of the laptop is (no chroot, no states line).
      expect(run.stderr).toMatch(/deploy: [01] published/);
      expect(existsSync(path.join(laptopDir, 'config')), what).toBe(false);
      expect(states()[n('laptop')], what).toBeUndefined();
      expect(manifestHolds(n('other'))).toBe(true);
      rmSync(path.join(fleet.root, 'hosts', 'laptop', link));
    }
    // The usual utils -> ../../utils link stays followed, and the laptop is published once clean.
    const clean = deploy(fleet);
    expect(clean.status).toBe(0);
    expect(readFileSync(path.join(laptopDir, 'config', 'utils', 'common.nix'), 'utf8')).toBe('{ }\n');
  });

  it('a file or directory not everyone may read, a FIFO, a broken link: refused naming it; the other hosts go on', () => {
    const fleet = newFleet({ secret: { flake: [n('secret')] }, ok: { flake: [n('ok')] } });
    suite.server.addUsers([n('secret'), n('ok')]);
    const hostDir = path.join(fleet.root, 'hosts', 'secret');
    const attempts: [() => void, string, () => void][] = [
      [() => writeFileSync(path.join(hostDir, 'key'), 'secret\n', { mode: 0o600 }), 'key is a file not everyone may read (mode 0600)', () => rmSync(path.join(hostDir, 'key'))],
      [() => mkdirSync(path.join(hostDir, 'private'), { mode: 0o700 }), 'private is a directory not everyone may read (mode 0700)', () => rmSync(path.join(hostDir, 'private'), { recursive: true })],
      [() => execFileSync('mkfifo', [path.join(hostDir, 'pipe')]), 'pipe is neither a regular file nor a directory', () => rmSync(path.join(hostDir, 'pipe'))],
      [() => symlinkSync('missing.nix', path.join(hostDir, 'dangling')), 'dangling is a broken symbolic link (to missing.nix)', () => rmSync(path.join(hostDir, 'dangling'))],
    ];
    for (const [plant, message, remove] of attempts) {
      plant();
      const run = deploy(fleet);
      expect(run.status, message).toBe(1);
      expect(run.stderr).toContain(`error: hosts/secret: ${message}`);
      expect(existsSync(path.join(suite.server.chrootDir, n('secret'), 'config'))).toBe(false);
      expect(manifestHolds(n('ok'))).toBe(true);
      remove();
    }
    expect(deploy(fleet).status).toBe(0);
  });

  it('names the client keeps for itself (.bento/, .bento-manifest) are refused, naming the path', () => {
    const fleet = newFleet({ copied: { flake: [n('copied')] } });
    suite.server.addUsers([n('copied')]);
    mkdirSync(path.join(fleet.root, 'hosts', 'copied', '.bento', 'pending'), { recursive: true });
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("bento: error: hosts/copied: .bento: .bento is reserved for the bento client's own state on the machine (/var/bento/.bento)");
    expect(run.stderr).toContain('no system is left to work on: every host directory failed');
    rmSync(path.join(fleet.root, 'hosts', 'copied', '.bento'), { recursive: true });
    writeFileSync(path.join(fleet.root, 'hosts', 'copied', '.bento-manifest'), 'x\n');
    expect(deploy(fleet).stderr).toContain('error: hosts/copied: .bento-manifest: .bento-manifest is reserved');
  });

  it('published files are read by the machine and root, not by other local users of the server', () => {
    const fleet = newFleet({ private: { flake: [n('priv')] } });
    suite.server.addUsers([n('priv')]);
    expect(deploy(fleet).status).toBe(0);
    const file = path.join(suite.server.chrootDir, n('priv'), 'config', 'flake.nix');
    const nobody = runAs(65534, 65534, ['cat', file]);
    expect(nobody.status).not.toBe(0);
    expect(nobody.stderr).toContain('Permission denied');
    const uid = Number(execFileSync('id', ['-u', n('priv')], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', n('priv')], { encoding: 'utf8' }));
    const machine = runAs(uid, gid, ['cat', file]);
    expect(machine.status).toBe(0);
    expect(machine.stdout).toContain('nixosConfigurations');
  });
});

describe.skipIf(!isRoot)('deploy touches only what bento made', () => {
  it('an existing account that is not a bento SFTP user, and its home, are left alone', () => {
    const name = n('webapp');
    const home = path.join(suite.server.chrootDir, name);
    mkdirSync(home, { mode: 0o700 });
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', home, '--user-group', '--shell', '/bin/bash', name]);
    suite.later(() => {
      spawnSync('userdel', [name]);
      spawnSync('groupdel', [name]);
    });
    execFileSync('chown', [`${name}:${name}`, home]);
    const before = snapshotTree(home);
    const fleet = newFleet({ app: { flake: [name] } });
    const run = deploy(fleet, { NAME: name });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${name}: the user ${name} exists and is not a bento SFTP user (its primary group is gid`);
    expect(run.stderr).toContain('its shell /bin/bash can log in');
    expect(snapshotTree(home)).toEqual(before);
    expect(states()[name]).toBeUndefined();
  });

  it.each(['/', '/tmp', '/etc', '/home', '/srv', '/var/lib'])('CHROOT_DIR=%s is refused before anything is touched', (dir) => {
    const fleet = newFleet({ tmp: { nonFlake: true } }, dir);
    const before = statSync(dir);
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    // Refused with config.sh (generate, which deploy runs first, would render server files for it).
    expect(run.stderr).toContain(`config.sh:1: CHROOT_DIR ${dir} cannot hold SFTP chroots: ${dir} is a directory of the system itself`);
    // Owner and mode are what a deploy would change (other tests may add entries to /srv or /tmp meanwhile).
    const after = statSync(dir);
    expect([after.mode, after.uid, after.gid]).toEqual([before.mode, before.uid, before.gid]);
    expect(existsSync(path.join(dir, 'tmp', 'logs'))).toBe(false);
  });

  it('a CHROOT_DIR that is a link to a system directory is refused by deploy', () => {
    const link = path.join(mkdtempSync('/srv/bento-link-'), 'chroot');
    suite.later(() => rmSync(path.dirname(link), { recursive: true, force: true }));
    symlinkSync('/tmp', link);
    const fleet = newFleet({ tmp: { nonFlake: true } }, link);
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`bento: error: CHROOT_DIR ${link} cannot hold SFTP chroots: /tmp is a directory of the system itself`);
  });

  it("an administrator's symbolic link or file in place of CHROOT_DIR/<name> is not replaced", () => {
    const fleet = newFleet({ linked: { flake: [n('linked')] }, filed: { flake: [n('filed')] } });
    suite.server.addUsers([n('linked'), n('filed')]);
    const elsewhere = mkdtempSync(path.join('/srv', 'bento-elsewhere-'));
    suite.later(() => rmSync(elsewhere, { recursive: true, force: true }));
    writeFileSync(path.join(elsewhere, 'keep'), 'logs\n');
    symlinkSync(elsewhere, path.join(suite.server.chrootDir, n('linked')));
    writeFileSync(path.join(suite.server.chrootDir, n('filed')), 'mine\n');
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${n('linked')}: cannot prepare its chroot: ${path.join(suite.server.chrootDir, n('linked'))} is a symbolic link (to ${elsewhere}): bento does not replace it`);
    expect(run.stderr).toContain(`${n('filed')}: cannot prepare its chroot: ${path.join(suite.server.chrootDir, n('filed'))} is not a directory`);
    expect(lstatSync(path.join(suite.server.chrootDir, n('linked'))).isSymbolicLink()).toBe(true);
    expect(readdirSync(elsewhere)).toEqual(['keep']);
    expect(readFileSync(path.join(suite.server.chrootDir, n('filed')), 'utf8')).toBe('mine\n');
    rmSync(path.join(suite.server.chrootDir, n('linked')));
    rmSync(path.join(suite.server.chrootDir, n('filed')));
  });
});

describe.skipIf(!isRoot)('what is built is what is published', () => {
  it('a host edited while its build runs: the snapshot is built and published whole, and the edit comes with the next deploy', async () => {
    // The build sleeps long enough to edit the host meanwhile.
    const slow = flakeText([n('slow')]).replace('mkdir -p $out &&', 'sleep 3 && mkdir -p $out &&');
    const fleet = newFleet({ slow: { flakeText: slow, files: { [`${n('slow')}.nix`]: 'before\n' } } });
    suite.server.addUsers([n('slow')]);
    const child = spawn(process.execPath, [CLI, 'deploy'], { env: { ...process.env, BENTO_DIR: fleet.root, ...NIX_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('building 1 system')) resolve();
      });
    });
    writeFileSync(path.join(fleet.root, 'hosts', 'slow', `${n('slow')}.nix`), 'edited during the build\n');
    expect(await exited, stderr).toBe(0);
    expect(manifestHolds(n('slow'))).toBe(true);
    expect(readFileSync(path.join(suite.server.chrootDir, n('slow'), 'config', `${n('slow')}.nix`), 'utf8')).toBe('before\n');
    // The store path recorded is that of what was published.
    const published = mkdtempSync(path.join(os.tmpdir(), 'bento-published-'));
    suite.later(() => rmSync(published, { recursive: true, force: true }));
    cpSync(path.join(suite.server.chrootDir, n('slow'), 'config'), published, { recursive: true, dereference: true });
    expect(states()[n('slow')]).toBe(machineBuild(published, n('slow')));
    const next = deploy(fleet);
    expect(next.stderr).toContain('deploy: 1 published');
    expect(readFileSync(path.join(suite.server.chrootDir, n('slow'), 'config', `${n('slow')}.nix`), 'utf8')).toBe('edited during the build\n');
  }, 60_000);

  it('a chroot whose files do not match its own manifest is published again', () => {
    const fleet = newFleet({ hurt: { flake: [n('hurt')], files: { 'data.txt': 'good\n' } } });
    suite.server.addUsers([n('hurt')]);
    expect(deploy(fleet).status).toBe(0);
    // Same size, other content: what a half-updated old deploy left behind.
    writeFileSync(path.join(suite.server.chrootDir, n('hurt'), 'config', 'data.txt'), 'evil\n');
    expect(manifestHolds(n('hurt'))).toBe(false);
    const run = deploy(fleet);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`${n('hurt')}: its published files do not match their manifest (data.txt differs from the manifest): publishing it again`);
    expect(manifestHolds(n('hurt'))).toBe(true);
    expect(readFileSync(path.join(suite.server.chrootDir, n('hurt'), 'config', 'data.txt'), 'utf8')).toBe('good\n');
    expect(deploy(fleet).stderr).toContain('deploy: 0 published, 1 unchanged');
  });

  it('a nested .gitignore: the server builds the file set the machine builds (git-tracked files), not the whole directory', () => {
    // The configuration reads a file that a nested .gitignore hides from git, hence from the machine's flake.
    const text = flakeText([n('ign')]).replace(
      'content = if builtins.pathExists',
      `hidden = if builtins.pathExists ./sub/hidden.nix then builtins.readFile ./sub/hidden.nix else "absent";\n      content = if builtins.pathExists`,
    );
    const fleet = newFleet({ ign: { flakeText: text, files: { 'sub/.gitignore': 'hidden.nix\n', 'sub/hidden.nix': 'present\n' } } });
    suite.server.addUsers([n('ign')]);
    expect(deploy(fleet).status).toBe(0);
    const published = mkdtempSync(path.join(os.tmpdir(), 'bento-published-'));
    suite.later(() => rmSync(published, { recursive: true, force: true }));
    cpSync(path.join(suite.server.chrootDir, n('ign'), 'config'), published, { recursive: true, dereference: true });
    // The machine receives the hidden file, but its git-tracked flake does not contain it…
    expect(readFileSync(path.join(published, 'sub', 'hidden.nix'), 'utf8')).toBe('present\n');
    const onMachine = machineBuild(published, n('ign'));
    expect(states()[n('ign')]).toBe(onMachine);
    // …which is not what a build of the whole directory gives: the test can tell them apart.
    expect(pathBuild(path.join(fleet.root, 'hosts', 'ign'), n('ign'))).not.toBe(onMachine);
  });
});

/** What the machine builds from its published config/: a git work tree with everything added. */
function machineBuild(config: string, name: string): string {
  execFileSync('git', ['init', '-q'], { cwd: config });
  execFileSync('git', ['add', '-A'], { cwd: config });
  const out = execFileSync('nix', [...NIX, 'build', '--json', '--no-link', `${config}#nixosConfigurations.${name}.config.system.build.toplevel`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return path.basename((JSON.parse(out) as { outputs: { out: string } }[])[0]!.outputs.out);
}

function pathBuild(dir: string, name: string): string {
  const out = execFileSync('nix', [...NIX, 'build', '--json', '--no-link', `path:${dir}#nixosConfigurations.${name}.config.system.build.toplevel`], { encoding: 'utf8' });
  return path.basename((JSON.parse(out) as { outputs: { out: string } }[])[0]!.outputs.out);
}

describe.skipIf(!isRoot)('a full CHROOT_DIR', () => {
  let small: string;
  beforeAll(() => {
    small = mkdtempSync('/srv/bento-small-');
    chmodSync(small, 0o755);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', small]);
    suite.later(() => {
      spawnSync('umount', [small]);
      rmSync(small, { recursive: true, force: true });
    });
  });

  it('a publication that fails for space keeps the old files, and states.txt names only what is published', () => {
    const fleet = newFleet({ big: { flake: [n('big')], files: { 'data.txt': 'small\n' } } }, small);
    suite.server.addUsers([n('big')], small);
    expect(deploy(fleet).status).toBe(0);
    const before = states(small)[n('big')];
    // Everything in the system's directory stays (its own mtime moves: a version directory was tried and removed).
    const withoutRoot = ({ '.': _root, ...rest }: Record<string, string>) => rest;
    const tree = withoutRoot(snapshotTree(path.join(small, n('big'))));
    writeFileSync(path.join(fleet.root, 'hosts', 'big', 'data.txt'), 'x'.repeat(2_000_000));
    // A new system too: a flake system whose system stays the same is not published again.
    writeFileSync(path.join(fleet.root, 'hosts', 'big', `${n('big')}.nix`), '# new\n');
    const run = deploy(fleet);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${n('big')}: publication failed, its previous files stay published: ENOSPC`);
    expect(states(small)[n('big')]).toBe(before);
    expect(withoutRoot(snapshotTree(path.join(small, n('big'))))).toEqual(tree);
    expect(manifestHolds(n('big'), small)).toBe(true);
  });

  /** A CHROOT_DIR is one fleet's: the systems of the test before are gone (deploy would retire them, freeing space). */
  function emptySmall(): void {
    for (const entry of readdirSync(small)) rmSync(path.join(small, entry), { recursive: true, force: true });
  }

  it('with the disk already full, every system fails alone with a message, and no temporary file stays (nor those of a killed deploy)', () => {
    emptySmall();
    const fleet = newFleet({ f1: { flake: [n('f1')] }, f2: { flake: [n('f2')] } }, small);
    suite.server.addUsers([n('f1'), n('f2')], small);
    // Leftovers of a deploy killed earlier, by this bento and by an older one.
    writeFileSync(path.join(small, '.states.txt.tmp-999999'), 'x');
    writeFileSync(path.join(small, 'states.txt.999999.tmp'), 'x');
    // Fill the disk.
    spawnSync('sh', ['-c', `cat /dev/zero > ${path.join(small, 'filler')}`]);
    suite.later(() => rmSync(path.join(small, 'filler'), { force: true }));
    const run = deploy(fleet);
    expect(run.stderr).not.toContain('internal error');
    expect(run.status).toBe(1);
    for (const name of [n('f1'), n('f2')]) expect(run.stderr).toMatch(new RegExp(`${name}: (cannot prepare its chroot|cannot record it in states.txt|publication failed)[^\\n]*ENOSPC`));
    expect(readdirSync(small).filter((entry) => entry.includes('tmp'))).toEqual([]);
    rmSync(path.join(small, 'filler'));
    expect(deploy(fleet).status).toBe(0);
  });

  it('a rollout state that cannot be written: a clear error naming rollout.json, no crash, no temporary file; the previous files stay published', () => {
    emptySmall();
    const fleet = newFleet({ waved: { flake: [n('waved')], files: { 'data.txt': 'first\n' } } }, small);
    suite.server.addUsers([n('waved')], small);
    expect(deploy(fleet).status).toBe(0);
    const manifest = readFileSync(path.join(small, n('waved'), 'config', '.bento-manifest'), 'utf8');
    writeFileSync(path.join(fleet.root, 'config.sh'), `${readFileSync(path.join(fleet.root, 'config.sh'), 'utf8')}ROLLOUT_WAVES="${n('waved')}"\n`);
    writeFileSync(path.join(fleet.root, 'hosts', 'waved', 'data.txt'), 'second\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'waved', `${n('waved')}.nix`), '# second\n');
    spawnSync('sh', ['-c', `cat /dev/zero > ${path.join(small, 'filler')}`]);
    suite.later(() => rmSync(path.join(small, 'filler'), { force: true }));
    const run = deploy(fleet);
    expect(run.stderr).not.toContain('internal error');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`bento: error: cannot write ${small}/rollout.json: ENOSPC`);
    expect(run.stderr).toContain('what was published stays published, and nothing more of the rollout is published');
    expect(existsSync(path.join(small, 'rollout.json'))).toBe(false);
    expect(readdirSync(small).filter((entry) => entry.includes('tmp'))).toEqual([]);
    expect(readFileSync(path.join(small, n('waved'), 'config', '.bento-manifest'), 'utf8')).toBe(manifest);
    expect(manifestHolds(n('waved'), small)).toBe(true);
    rmSync(path.join(small, 'filler'));
  });
});

describe.skipIf(!isRoot)('a failure after config/ is switched', () => {
  it('last_change_date cannot be written: config/ and states.txt both stay on the previous build, and the next deploy records the new one', () => {
    const fleet = newFleet({ half: { flake: [n('half')], files: { [`${n('half')}.nix`]: 'first\n' } } });
    suite.server.addUsers([n('half')]);
    expect(deploy(fleet).status).toBe(0);
    const first = states()[n('half')];
    const systemDir = path.join(suite.server.chrootDir, n('half'));
    const firstManifest = readFileSync(path.join(systemDir, 'config', '.bento-manifest'), 'utf8');
    // A fault at the step after the config/ swap: last_change_date cannot be replaced.
    rmSync(path.join(systemDir, 'last_change_date'));
    mkdirSync(path.join(systemDir, 'last_change_date', 'in-the-way'), { recursive: true });
    writeFileSync(path.join(fleet.root, 'hosts', 'half', `${n('half')}.nix`), 'second\n');
    const failed = deploy(fleet);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain(`${n('half')}: publication failed, its previous files stay published: `);
    expect(readFileSync(path.join(systemDir, 'config', '.bento-manifest'), 'utf8')).toBe(firstManifest);
    expect(states()[n('half')]).toBe(first);
    // The fault gone, the next deploy publishes the new build and names it in states.txt.
    rmSync(path.join(systemDir, 'last_change_date'), { recursive: true });
    const next = deploy(fleet);
    expect(next.status, next.stderr).toBe(0);
    expect(next.stderr).toContain('deploy: 1 published');
    expect(readFileSync(path.join(systemDir, 'config', `${n('half')}.nix`), 'utf8')).toBe('second\n');
    const published = mkdtempSync(path.join(os.tmpdir(), 'bento-published-'));
    suite.later(() => rmSync(published, { recursive: true, force: true }));
    cpSync(path.join(systemDir, 'config'), published, { recursive: true, dereference: true });
    expect(states()[n('half')]).not.toBe(first);
    expect(states()[n('half')]).toBe(machineBuild(published, n('half')));
  });
});

describe.skipIf(!isRoot)('a restrictive umask', () => {
  it('deploy under umask 077 publishes, every directory and file with its own mode: machines read the manifest and subdirectories', () => {
    const parent = mkdtempSync('/srv/bento-umask-');
    chmodSync(parent, 0o755);
    suite.later(() => rmSync(parent, { recursive: true, force: true }));
    // CHROOT_DIR does not exist yet: deploy makes it (and its parent directory).
    const chrootDir = path.join(parent, 'made', 'chroot');
    const fleet = newFleet({ masked: { flake: [n('masked')], files: { 'modules/sub/a.nix': '{ }\n' } } }, chrootDir);
    suite.server.addUsers([n('masked')], chrootDir);
    const run = spawnSync('sh', ['-c', 'umask 077 && exec "$@"', 'sh', process.execPath, CLI, 'deploy'], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', BENTO_DIR: fleet.root, ...NIX_ENV },
    });
    expect(run.stderr).not.toContain('not everyone may read');
    expect(run.status, run.stderr).toBe(0);
    const mode = (file: string) => (statSync(file).mode & 0o7777).toString(8);
    expect(mode(path.join(parent, 'made'))).toBe('755');
    expect(mode(chrootDir)).toBe('755');
    expect(mode(path.join(chrootDir, 'states.txt'))).toBe('644');
    const config = path.join(chrootDir, n('masked'), 'config');
    expect(mode(config)).toBe('750');
    expect(mode(path.join(config, 'modules'))).toBe('755');
    expect(mode(path.join(config, 'modules', 'sub'))).toBe('755');
    expect(mode(path.join(config, 'modules', 'sub', 'a.nix'))).toBe('644');
    expect(mode(path.join(config, '.bento-manifest'))).toBe('644');
    expect(mode(path.join(chrootDir, n('masked'), 'last_change_date'))).toBe('644');
    // What the machine does first: read the manifest, then every file it lists, as its own user.
    const uid = Number(execFileSync('id', ['-u', n('masked')], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', n('masked')], { encoding: 'utf8' }));
    const check = runAs(uid, gid, ['sh', '-c', `cd ${config} && sha256sum -c --strict --quiet .bento-manifest`]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

describe.skipIf(!isRoot)('the deploy lock', () => {
  it('is held by one process at a time, among many started at the same moment; a PID left in the lock file does not block', async () => {
    const chrootDir = mkdtempSync('/srv/bento-lock-');
    suite.later(() => rmSync(chrootDir, { recursive: true, force: true }));
    suite.later(() => removeDeployCaches(chrootDir));
    const module = path.join(PACKAGE_ROOT, 'dist', 'chroot', 'chroot-dir.js');
    const startAt = Date.now() + 3000;
    const script = `
      const { lockChrootDir } = await import(${JSON.stringify(module)});
      while (Date.now() < ${startAt}) {}
      try {
        const release = await lockChrootDir(${JSON.stringify(chrootDir)});
        const start = performance.timeOrigin + performance.now();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const end = performance.timeOrigin + performance.now();
        await release();
        console.log(JSON.stringify({ start, end }));
      } catch (error) {
        console.log(JSON.stringify({ busy: error.message }));
      }`;
    const runs = await Promise.all(
      Array.from({ length: 12 }, () => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        return new Promise<{ start?: number; end?: number; busy?: string }>((resolve) => child.once('exit', () => resolve(JSON.parse(out))));
      }),
    );
    const held = runs.filter((run) => run.start !== undefined).sort((a, b) => (a.start as number) - (b.start as number));
    expect(held.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < held.length; i++) expect(held[i]!.start as number).toBeGreaterThanOrEqual(held[i - 1]!.end as number);
    const busy = runs.filter((run) => run.busy);
    expect(busy.length).toBeGreaterThan(0);
    for (const run of busy) expect(run.busy).toMatch(new RegExp(`^another bento deploy( \\(pid \\d+\\))? is publishing into ${chrootDir}; wait for it to finish$`));

    // A live, unrelated PID in the lock file (pid 1): only the kernel lock counts.
    writeFileSync(path.join('/run', `bento-deploy-${sha256(path.resolve(chrootDir)).slice(0, 16)}.lock`), '1\n');
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `const { lockChrootDir } = await import(${JSON.stringify(module)}); const release = await lockChrootDir(${JSON.stringify(chrootDir)}); await release(); console.log('locked');`], { encoding: 'utf8' });
    expect(probe.stdout + probe.stderr).toBe('locked\n');
  }, 30_000);
});

describe.skipIf(!isRoot)('smaller ones, each a clear message', () => {
  it('a flake turned into a configuration.nix loses its states.txt line', () => {
    const fleet = newFleet({ [n('conv')]: { flake: [n('conv')] } });
    suite.server.addUsers([n('conv')]);
    expect(deploy(fleet).status).toBe(0);
    expect(states()[n('conv')]).toBeDefined();
    const dir = path.join(fleet.root, 'hosts', n('conv'));
    rmSync(path.join(dir, 'flake.nix'));
    writeFileSync(path.join(dir, 'configuration.nix'), '{ ... }: { }\n');
    expect(deploy(fleet).status).toBe(0);
    expect(states()[n('conv')]).toBeUndefined();
  });

  it('the same key in two keys/*.pub is refused, naming both', () => {
    const fleet = newFleet({ k1: { flake: [n('k1')] }, k2: { flake: [n('k2')] } });
    writeFileSync(path.join(fleet.root, 'keys', `${n('k2')}.pub`), `${testKey(n('k1'))}\n`);
    const run = bento(['generate'], { env: { BENTO_DIR: fleet.root } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`bento: error: keys/${n('k1')}.pub and keys/${n('k2')}.pub hold the same key: either machine could log in as the other`);
  });

  it.each(['0', '-3', 'abc', '1.5'])('--jobs %s is refused with a message', (value) => {
    const fleet = newFleet({ j: { flake: [n('j')] } });
    const run = bento(['deploy', '--jobs', value], { env: { BENTO_DIR: fleet.root } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`error: option '-j, --jobs <n>' argument '${value}' is invalid. expected a positive whole number, got "${value}"`);
  });
});
