/**
 * Fleet code is evaluated and built with an unprivileged user's rights,
 * never root's.
 *
 * Nix reads what fleet code names with the rights of the process that
 * evaluates it, whatever the evaluation mode, and runs tools for it with
 * the same rights. Pure mode refuses `builtins.readFile /etc/shadow`, but
 * Nix 2.8's fetchers copy a local path into the world-readable store before
 * any check ("FIXME: check whether access to 'path' is allowed",
 * src/libfetchers/path.cc); restricted mode checks the paths the Nix
 * language reads, not what `hg` (run by builtins.fetchMercurial, which
 * honours the repository's own .hg/hgrc hooks) or `git` (run by
 * builtins.fetchGit, which follows a gitfile's `gitdir:`) read or execute.
 * So when bento runs as root, every Nix command over fleet code — flakes and
 * configuration.nix files alike — runs as EVALUATOR_USER, as the client of
 * a nix-daemon that bento starts for itself on a private socket: the daemon
 * (root) writes the store and builds with Nix's build users, as on any
 * multi-user installation, and the evaluator reads and runs only what that
 * user may. Not root, bento evaluates with the rights of whoever runs it,
 * directly.
 *
 * EVALUATOR_USER (bento-eval) is bento's alone, made by the server's setup
 * (setup-debian.sh, the NixOS server module): a process of the same user may
 * ptrace or signal the evaluator and change what gets built for every
 * machine, and `nobody` is shared (NFS squashing, daemons that drop to it).
 * A server set up by an older bento lacks it: bento then evaluates as
 * `nobody`, as it used to, and says once per run how to make it.
 *
 * The evaluator gets a home of its own and only the environment Nix needs
 * (PATH, Nix's settings, proxies): none of root's variables, credentials
 * or user configuration.
 *
 * The daemon builds for the evaluator, and a build gets some of what the
 * daemon has: builtin:fetchurl writes the daemon's netrc-file into the build
 * directory (where a file:// URL fetches it into an output), and a
 * fixed-output derivation gets the daemon's own variables it names in
 * impureEnvVars, in an output Nix registers even when its hash is wrong. So
 * bento's daemon has no netrc (`netrc-file = /dev/null`), trusts root alone
 * (a `trusted-users` that named the evaluator would let it change any
 * setting), and runs with the few variables it needs; NIX_CONFIG reaches it
 * as a root-only file instead of a variable (daemonEnvironment).
 */
import { chmodSync, chownSync, closeSync, constants, existsSync, fchmodSync, fchownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ToolError, UserError } from '../errors.js';
import { formatCommand, requireOnPath, run, startBackground, tail, type BackgroundProcess, type RunOptions, type RunResult } from '../exec.js';
import { makeTempDir } from '../util/temp-dir.js';
import { removeTakingOver } from '../util/remove-taking-over.js';
import { openRegularFileSync, readAtMostSync } from '../util/read-at-most.js';
import { NIX_FEATURE_ARGS, nixSettings } from './nix.js';

/** Who evaluates fleet code when bento runs as root: a system user of bento's own, owning nothing, made by the server's setup. */
export const EVALUATOR_USER = 'bento-eval';

/** Who evaluates on a server set up by an older bento, without EVALUATOR_USER: the user every Debian and NixOS system has. */
export const FALLBACK_EVALUATOR_USER = 'nobody';

/** The user to evaluate as, and the one to fall back to when it does not exist. */
export interface EvaluatorUsers {
  user: string;
  fallback: string;
}

const EVALUATOR_USERS: EvaluatorUsers = { user: EVALUATOR_USER, fallback: FALLBACK_EVALUATOR_USER };

/** How to reach the network (proxies) and the locale: both the daemon and the evaluator keep them. */
const NETWORK_AND_LOCALE_ENV = [
  'http_proxy',
  'https_proxy',
  'ftp_proxy',
  'all_proxy',
  'no_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'FTP_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'LANG',
  'LC_ALL',
  'TZ',
] as const;

/**
 * The variables bento's daemon keeps: where Nix and its store are, how to
 * reach the network (proxies, certificates) and remote builders (ssh). A
 * fixed-output build may ask for any of them (impureEnvVars): none is a
 * credential of root's, and NIX_CONFIG, which may hold access-tokens, is
 * not one of them.
 */
const DAEMON_ENV = [
  'PATH',
  'NIX_CONF_DIR',
  'NIX_STORE_DIR',
  'NIX_STATE_DIR',
  'NIX_LOG_DIR',
  'NIX_DATA_DIR',
  'NIX_SSL_CERT_FILE',
  'SSL_CERT_FILE',
  'NIX_SSHOPTS',
  'SSH_AUTH_SOCK',
  ...NETWORK_AND_LOCALE_ENV,
  'TMPDIR',
] as const;

/**
 * Settings of bento's daemon that no configuration file changes (the
 * command line wins over nix.conf and NIX_CONFIG): no netrc for builds to
 * copy, root its only trusted user, root and the evaluator (whichever user
 * evaluates) its only users.
 */
export function daemonSettings(builders: string | undefined, evaluatorUser = EVALUATOR_USER): string[] {
  return [
    '--option',
    'netrc-file',
    '/dev/null',
    '--option',
    'trusted-users',
    'root',
    '--option',
    'allowed-users',
    `root ${evaluatorUser}`,
    ...(builders === undefined ? [] : ['--option', 'builders', builders]),
  ];
}

/**
 * How often bento's daemon looks again at a lock another build holds: a
 * Nix build that finds a derivation's output locked (another `nix build` of
 * the same deploy building or substituting it: bento shares a fleet's
 * derivations among several, build.ts) is not woken when the lock is
 * released but looks again every build-poll-interval seconds, 5 by
 * default, and at most once a second whatever the setting
 * (Worker::waitForInput, src/libstore/build/worker.cc). One second: a dependency the builds share
 * then costs the waiting one at most a second, not five (bench/README.md).
 * Only the daemon can set it for an unprivileged client.
 */
export const DAEMON_LOCK_POLL_SETTINGS = ['--option', 'build-poll-interval', '1'] as const;

/**
 * Nix 2.8's user configuration files as it finds them (getUserConfigFiles,
 * src/libstore/globals.cc): NIX_USER_CONF_FILES, else nix/nix.conf under
 * XDG_CONFIG_HOME (~/.config) and each of XDG_CONFIG_DIRS (/etc/xdg).
 */
export function userConfigFiles(from: NodeJS.ProcessEnv = process.env, home = os.homedir()): string[] {
  if (from.NIX_USER_CONF_FILES !== undefined) return from.NIX_USER_CONF_FILES.split(':').filter((file) => file !== '');
  const configHome = from.XDG_CONFIG_HOME ?? path.join(from.HOME ?? home, '.config');
  return [configHome, ...(from.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':').filter((dir) => dir !== '')].map((dir) => path.join(dir, 'nix', 'nix.conf'));
}

/**
 * The daemon's environment: DAEMON_ENV, its socket, and its configuration
 * files: `nixConfigFile` (what NIX_CONFIG said, first: it wins, as NIX_CONFIG
 * does) before root's own user files, which Nix would read anyway.
 */
export function daemonEnvironment(socket: string, nixConfigFile: string | undefined, from: NodeJS.ProcessEnv = process.env, home = os.homedir()): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of DAEMON_ENV) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  const files = [...(nixConfigFile === undefined ? [] : [nixConfigFile]), ...userConfigFiles(from, home)];
  return { ...env, NIX_DAEMON_SOCKET_PATH: socket, NIX_USER_CONF_FILES: files.join(':') };
}

/** The variables the evaluator keeps: what Nix and its fetchers need, nothing of root's own. */
const PASSED_ENV = [
  'PATH',
  'NIX_CONFIG',
  'NIX_CONF_DIR',
  'NIX_STORE_DIR',
  'NIX_SSL_CERT_FILE',
  'SSL_CERT_FILE',
  ...NETWORK_AND_LOCALE_ENV,
  'TERM',
  'NO_COLOR',
] as const;

interface Identity {
  uid: number;
  gid: number;
}

/** Who evaluates: the user's name, uid and primary gid. */
export interface Evaluator extends Identity {
  name: string;
}

interface Workspace extends Evaluator {
  /** root:<gid> 0750: the evaluator's home and the daemons' sockets. */
  dir: string;
  home: string;
}

/** Whether Nix over fleet code runs as another user (EVALUATOR_USER): bento is root. */
export function evaluatesAsAnotherUser(): boolean {
  return process.getuid?.() === 0;
}

/** A passwd line's uid and primary gid, when both are numbers. */
function identityOf(line: string | undefined): Identity | undefined {
  const fields = line?.split(':') ?? [];
  if (fields[2] === undefined || fields[3] === undefined || fields[2] === '' || fields[3] === '') return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

/**
 * Whether a passwd shell lets nobody log in: an absolute nologin or false,
 * what setup-debian.sh (useradd, systemd-sysusers) and NixOS
 * (isSystemUser: shadow's nologin) give the evaluator. An empty field is
 * /bin/sh.
 */
export function refusesLogin(shell: string): boolean {
  return path.isAbsolute(shell) && ['nologin', 'false'].includes(path.basename(shell));
}

/** The warning of a run that evaluates as the fallback user: what it risks, and how to make the user. */
export function fallbackWarning(users: EvaluatorUsers = EVALUATOR_USERS): string {
  return (
    `there is no user ${users.user} on this server yet: bento evaluates fleet code as ${users.fallback}, whom other services share, and any process of ${users.fallback} could change what gets built for the machines; ` +
    makeUserAdvice(users.user)
  );
}

/** How to make the evaluator's user: the server's setup, on either system. */
function makeUserAdvice(user: string): string {
  return `run generated/server/setup-debian.sh (Debian), or rebuild the NixOS server with bento's server module (services.bento-server), again if the server was set up by an older bento: both make the user ${user}`;
}

function warnOnStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/**
 * Who evaluates fleet code as root, and what it has: the user, looked up
 * once (`getent passwd`; a missing `users.user` warns once, through `warn`,
 * and falls back to `users.fallback`, never root), its home, bento's
 * daemons. One per process (the functions below); tests make their own with
 * other names.
 */
export class FleetEvaluator {
  private identity: Promise<Evaluator> | undefined;
  private workspace: Promise<Workspace> | undefined;
  private readonly daemons = new Map<string, Promise<string>>();
  private readonly running: BackgroundProcess[] = [];
  private resolved: string | undefined;
  /** The workspace's directory once made: close() removes it, at exit too (synchronously). */
  private dir: string | undefined;
  private readonly cleanUp = () => this.close();

  constructor(
    private readonly users: EvaluatorUsers = EVALUATOR_USERS,
    private readonly warn: (message: string) => void = warnOnStderr,
  ) {}

  /** The user who evaluates: the one looked up, else the one asked for (for messages). */
  name(): string {
    return this.resolved ?? this.users.user;
  }

  /** `getent passwd` of the user and of the fallback, in one process: the user's uid and primary gid (never root's). */
  evaluator(): Promise<Evaluator> {
    this.identity ??= this.lookUp();
    return this.identity;
  }

  private async lookUp(): Promise<Evaluator> {
    const { user, fallback } = this.users;
    // What the evaluator will run: said first, before the tools that look it up.
    for (const tool of ['nix', 'nix-daemon', 'setpriv']) requireOnPath(tool);
    // Asked before bento's daemon starts (refuseRootBuilds): asked now, beside getent; a failure is thrown there.
    nixSettings().catch(() => undefined);
    // Exit status 2 when one of them is missing: the lines say which.
    const result = await run('getent', ['passwd', user, fallback], { allowFailure: true });
    const lines = result.stdout.split('\n');
    const lineOf = (name: string) => lines.find((line) => line.startsWith(`${name}:`));
    const own = lineOf(user);
    const notRoot = (identity: Identity | undefined) => identity !== undefined && identity.uid !== 0 && identity.gid !== 0;
    if (own !== undefined) {
      const identity = identityOf(own);
      if (!identity || !notRoot(identity)) {
        throw new UserError(
          `the user ${user} of this server is root, or has no uid and group of its own (${own.split(':').slice(2, 4).join(':')}): bento evaluates fleet code as ${user}, never as root`,
          `remove that account (userdel ${user}), then run generated/server/setup-debian.sh again, which makes it as bento needs it`,
        );
      }
      // An account of that name made by someone else, which a person logs in as, could trace the evaluator as surely as a shared one.
      const shell = own.split(':')[6] ?? '';
      if (!refusesLogin(shell)) {
        throw new UserError(
          `the user ${user} of this server has the login shell ${shell === '' ? '/bin/sh (its shell field is empty)' : shell}: bento evaluates fleet code as ${user}, a user of bento's alone that nobody logs in as (whoever does could trace the evaluator and change what gets built for every machine)`,
          `if that account is bento's, take its shell away (usermod --shell /usr/sbin/nologin ${user}); if it is someone else's, rename or remove it, then run generated/server/setup-debian.sh again, which makes ${user} as bento needs it`,
        );
      }
      this.resolved = user;
      return { name: user, ...identity };
    }
    const identity = identityOf(lineOf(fallback));
    if (!identity || !notRoot(identity)) {
      throw new UserError(
        `there is no user ${user} on this server, nor ${fallback} (or it is root): bento evaluates fleet code as ${user}, never as root`,
        makeUserAdvice(user),
      );
    }
    this.warn(fallbackWarning(this.users));
    this.resolved = fallback;
    return { name: fallback, ...identity };
  }

  /** The evaluator's home (owned by it, 0700) in a directory only root and it may enter, removed by close() or when bento exits. */
  private space(): Promise<Workspace> {
    this.workspace ??= (async () => {
      const who = await this.evaluator();
      const dir = makeTempDir('eval');
      this.dir = dir;
      process.once('exit', this.cleanUp);
      chownSync(dir, 0, who.gid);
      chmodSync(dir, 0o750);
      const home = path.join(dir, 'home');
      mkdirSync(home, { mode: 0o700 });
      chmodSync(home, 0o700);
      chownSync(home, who.uid, who.gid);
      return { ...who, dir, home };
    })();
    return this.workspace;
  }

  /** Stops bento's daemons and removes the evaluator's home (at exit; a test's own evaluator when it is done). */
  close(): void {
    process.removeListener('exit', this.cleanUp);
    for (const daemon of this.running.splice(0)) daemon.stop();
    // The home is the evaluator's: taken back before it is walked.
    if (this.dir !== undefined) removeTakingOver(this.dir);
    this.dir = undefined;
    this.workspace = undefined;
    this.daemons.clear();
  }

  /** shareWithEvaluator for this evaluator. */
  async share(dir: string): Promise<void> {
    const { gid } = await this.evaluator();
    chownSync(dir, 0, gid);
    chmodSync(dir, 0o750);
  }

  /** shareTreeWithEvaluator for this evaluator. */
  async shareTree(dir: string): Promise<void> {
    const { gid } = await this.evaluator();
    // Every directory listed here is bento's, in a directory of bento's:
    // nothing in the tree can be renamed or replaced while it is walked.
    const walk = (current: string, isDirectory: boolean) => {
      lchownSync(current, 0, gid);
      const stats = lstatSync(current);
      if (stats.isSymbolicLink()) return; // chmod would follow it
      chmodSync(current, (stats.mode & 0o7707) | (isDirectory ? 0o050 : 0o040));
      if (!isDirectory) return;
      for (const entry of readdirSync(current, { withFileTypes: true })) walk(path.join(current, entry.name), entry.isDirectory());
    };
    walk(dir, true);
  }

  /** Runs TOOL ARGS as the evaluator, the client of bento's daemon. */
  async runTool(tool: FleetTool, toolArgs: readonly string[], options: FleetNixOptions = {}): Promise<RunResult> {
    const { builders, ...runOptions } = options;
    const space = await this.space();
    const socket = await this.daemonSocket(space, builders);
    return run('setpriv', [`--reuid=${space.uid}`, `--regid=${space.gid}`, '--clear-groups', '--', tool, ...toolArgs], {
      ...runOptions,
      env: evaluatorEnvironment(space, socket, runOptions.env),
      extendEnv: false,
    });
  }

  /** unreadableByEvaluator for this evaluator. */
  async unreadable(paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const { uid, gid } = await this.evaluator();
    const script = 'for p do test -r "$p" || printf \'%s\\n\' "$p"; done';
    const result = await run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', script, 'sh', ...paths], { env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    return result.stdout.split('\n').filter((line) => line !== '');
  }

  /** The socket of bento's daemon with these builders, started on first use. */
  private daemonSocket(space: Workspace, builders: string | undefined): Promise<string> {
    const key = JSON.stringify(builders ?? null);
    let socket = this.daemons.get(key);
    if (!socket) {
      socket = this.startDaemon(space, builders);
      this.daemons.set(key, socket);
    }
    return socket;
  }

  /**
   * Starts `nix-daemon` on a socket in the workspace (only root and the
   * evaluator may reach it) and waits until it accepts connections. It dies
   * with bento: stopped on exit, and killed by the kernel if bento is killed
   * (setpriv --pdeathsig).
   */
  private async startDaemon(space: Workspace, builders: string | undefined): Promise<string> {
    await refuseRootBuilds();
    const dir = mkdtempSync(path.join(space.dir, 'daemon-'));
    chownSync(dir, 0, space.gid);
    chmodSync(dir, 0o750);
    const socket = path.join(dir, 'socket');
    const logFile = path.join(dir, 'log');
    // Root's alone (0600): a build user may learn the file's name (NIX_USER_CONF_FILES), not what it says.
    let nixConfigFile: string | undefined;
    if (process.env.NIX_CONFIG !== undefined) {
      nixConfigFile = path.join(dir, 'nix-config.conf');
      writeFileSync(nixConfigFile, `${process.env.NIX_CONFIG}\n`, { mode: 0o600 });
    }
    const args = ['--pdeathsig', 'SIGKILL', '--', 'nix-daemon', ...daemonSettings(builders, space.name), ...DAEMON_LOCK_POLL_SETTINGS];
    const daemon = startBackground('setpriv', args, { env: daemonEnvironment(socket, nixConfigFile), extendEnv: false, logFile });
    this.running.push(daemon);
    let ended: { error?: unknown; code?: number } | undefined;
    daemon.exited.then(
      (code) => (ended = { code }),
      (error: unknown) => (ended = { error }),
    );
    const deadline = Date.now() + 30_000;
    while (!(await accepts(socket))) {
      if (ended?.error) throw ended.error;
      if (ended || Date.now() > deadline) {
        daemon.stop();
        const log = existsSync(logFile) ? tail(readFileSync(logFile, 'utf8')) : '';
        throw new ToolError(formatCommand('setpriv', args), ended?.code, log, `nix-daemon did not start${ended ? ` (exit status ${ended.code ?? 'signal'})` : ' within 30 s'}: ${log || 'no output'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return socket;
  }
}

/** This process's evaluator. */
const fleetEvaluator = new FleetEvaluator();

/** The user fleet code is evaluated as, when it is another one than bento's (for messages). */
export function otherEvaluator(): string | undefined {
  return evaluatesAsAnotherUser() ? fleetEvaluator.name() : undefined;
}

/**
 * Lets the evaluator read `dir` (made private by makeTempDir): group of the
 * evaluator, mode 0750, so that other local users still cannot. Nothing to
 * do when bento is not root.
 */
export async function shareWithEvaluator(dir: string): Promise<void> {
  if (!evaluatesAsAnotherUser()) return;
  await fleetEvaluator.share(dir);
}

/**
 * Lets the evaluator read `dir` and everything below it, and write nothing
 * there: bento's, in the evaluator's group, readable (directories also
 * searchable) by that group; the others' bits as they were. Links are not
 * followed. For a flake's copy Nix locks as the evaluator; the one file Nix
 * rewrites, its flake.lock, is made the evaluator's alone
 * (writableByEvaluator). A tree of the evaluator's own is no place for root
 * to walk or remove: any of its directories could be swapped for a link to
 * elsewhere between root's look and root's step. Nothing to do when bento
 * is not root.
 */
export async function shareTreeWithEvaluator(dir: string): Promise<void> {
  if (!evaluatesAsAnotherUser()) return;
  await fleetEvaluator.shareTree(dir);
}

/**
 * Makes the new file `file` (0644) holding `content`, which the evaluator
 * may rewrite, in a directory it may not write (shareWithEvaluator): a
 * file Nix rewrites in place (a wrapper flake's flake.lock), while nothing
 * else there is the evaluator's. A directory of its own, in /tmp, it could
 * rename and replace by a link, or fill with its own directories to swap
 * under root's recursive removal. Read it back with readEvaluatorFile. Not
 * root: the file is simply written.
 */
export async function writableByEvaluator(file: string, content: string): Promise<void> {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, content);
    fchmodSync(fd, 0o644); // whatever the umask: the evaluator reads it
    if (evaluatesAsAnotherUser()) {
      const { uid, gid } = await fleetEvaluator.evaluator();
      fchownSync(fd, uid, gid);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a file the evaluator may have replaced or rewritten since (one it
 * may write: writableByEvaluator): never through a symbolic link, only a regular file, at most
 * `limit` bytes. Undefined when it does not exist. `afterLooking` (tests)
 * runs between the look at the open file and its reading.
 */
export function readEvaluatorFile(file: string, limit = 16 * 1024 * 1024, afterLooking: () => void = () => {}): string | undefined {
  // Opened as every path others may write is (util/read-at-most.ts): not
  // waiting, looked at through the descriptor; a FIFO or a directory is an
  // IrregularFileError ("… is not a regular file").
  let opened: ReturnType<typeof openRegularFileSync>;
  try {
    opened = openRegularFileSync(file, { noFollow: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new Error(`${file} is a symbolic link`);
    throw error;
  }
  const { fd, stats } = opened;
  try {
    if (stats.size > limit) throw new Error(`${file} is larger than ${limit} bytes`);
    afterLooking();
    // Never more than the limit, whatever the size looked at: the file is
    // the evaluator's to write, and may have grown since.
    const bytes = readAtMostSync(fd, limit, stats.size);
    if (bytes === undefined) throw new Error(`${file} is larger than ${limit} bytes`);
    return bytes.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export interface FleetNixOptions extends RunOptions {
  /**
   * Nix's `builders`: given to the daemon, which does the building (it
   * ignores an untrusted client's builders).
   */
  builders?: string;
}

/** The Nix tools bento runs over fleet code. */
export type FleetTool = 'nix' | 'nix-build' | 'nix-instantiate';

/**
 * Runs `nix ARGS` (flakes enabled) over fleet code: as EVALUATOR_USER (or,
 * on a server without it, FALLBACK_EVALUATOR_USER) through bento's own
 * daemon when bento is root, else directly. A failure
 * is returned or thrown as run() does.
 */
export function runFleetNix(args: readonly string[], options: FleetNixOptions = {}): Promise<RunResult> {
  return runFleetTool('nix', args, options);
}

/** runFleetNix for any of Nix's tools (nix-build, nix-instantiate: a configuration.nix). */
export async function runFleetTool(tool: FleetTool, args: readonly string[], options: FleetNixOptions = {}): Promise<RunResult> {
  const toolArgs = tool === 'nix' ? [...NIX_FEATURE_ARGS, ...args] : [...args];
  if (evaluatesAsAnotherUser()) return fleetEvaluator.runTool(tool, toolArgs, options);
  const { builders, ...runOptions } = options;
  return run(tool, [...toolArgs, ...(builders === undefined ? [] : ['--builders', builders])], runOptions);
}

/**
 * Which of `paths` the evaluator cannot read (all of them readable when
 * bento is not root: it evaluates as itself). One process for the lot.
 */
export async function unreadableByEvaluator(paths: readonly string[]): Promise<string[]> {
  if (!evaluatesAsAnotherUser()) return [];
  return fleetEvaluator.unreadable(paths);
}

/** What the evaluator's Nix sees: PASSED_ENV, its own home and temporary files, bento's daemon. */
export function evaluatorEnvironment(space: Pick<Workspace, 'home'>, socket: string, extra: Record<string, string | undefined> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_ENV) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) env[name] = value;
  return {
    ...env,
    HOME: space.home,
    XDG_CACHE_HOME: path.join(space.home, '.cache'),
    XDG_CONFIG_HOME: path.join(space.home, '.config'),
    XDG_DATA_HOME: path.join(space.home, '.local', 'share'),
    TMPDIR: space.home,
    NIX_REMOTE: `unix://${socket}`,
    // The staging copies are root's git work trees: git refuses another owner's repository unless told it is safe.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'safe.directory',
    GIT_CONFIG_VALUE_0: '*',
  };
}

/**
 * An empty `build-users-group` makes Nix build as the daemon's user, root:
 * a builder could then read every file of the server. Refused before any
 * build, naming the setting.
 */
async function refuseRootBuilds(): Promise<void> {
  const group = (await nixSettings()).get('build-users-group');
  if (group === '') {
    throw new UserError(
      "Nix's build-users-group is empty (nix.conf or NIX_CONFIG): Nix would build fleet code as root, and a build could read every file of this server",
      'set build-users-group = nixbld (the group of Nix build users) in /etc/nix/nix.conf',
    );
  }
}

function accepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = net.createConnection({ path: socket });
    connection.once('connect', () => {
      connection.destroy();
      resolve(true);
    });
    connection.once('error', () => resolve(false));
  });
}
