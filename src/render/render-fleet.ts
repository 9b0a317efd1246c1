/**
 * Turns the fleet model into the files of generated/. Pure: it returns
 * `{path, content, mode}` and never touches the disk (see write-output.ts).
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { sizeSshd, type Config } from '../config/config.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { assignUids } from '../fleet/uids.js';
import type { SigningKey } from '../nix/signing-key.js';
import { createTemplateEngine, GENERATED_HEADER, type TemplateEngine } from './template-engine.js';
import { CLIENT_LIBRARY_NAME, clientLibraryBytes, clientLibraryDigest, renderClientLibrary } from './client-library.js';
import { readFileSync } from 'node:fs';
import { NIX_MODULES_DIR, TEMPLATES_DIR } from '../paths.js';
import { LOG_PROTOCOL_VERSION } from '../protocol/log-header.js';
import { printfOctal, storedGzip } from '../util/gzip-stored.js';
import { sedByteEscapes } from '../util/sanitize.js';
import { byText } from '../util/text.js';

export interface RenderedFile {
  /** Relative to the output directory, with '/' separators. */
  path: string;
  content: string;
  /** 0o755 for scripts, 0o644 otherwise. */
  mode: number;
  /**
   * `content` as UTF-8, in parts, when part of it is shared by many files:
   * bootstrap.sh holds the client library, encoded once for every machine
   * and written and compared from that one copy (write-output.ts).
   */
  bytes?: readonly Buffer[];
}

/** What rendering needs to know of a fleet. */
export interface RenderInput {
  config: Config;
  systems: readonly Pick<FleetSystem, 'name' | 'kind' | 'key' | 'prebuilt'>[];
  /** The server's signing key: needed when a system is prebuilt. */
  signingKey?: Pick<SigningKey, 'publicKey'>;
  /** The uid of each system's account (uids.txt); a system without one gets the one assignUids gives it. */
  uids?: ReadonlyMap<string, number>;
}

const SCRIPT = 0o755;
const DATA = 0o644;
const AUTHORIZED_KEYS_FILE = '/etc/ssh/authorized_keys.d/%u';

/** Where sshd reads the keys of system `name` (the Match block's AuthorizedKeysFile, on NixOS and elsewhere). */
export function authorizedKeysFileOf(name: string): string {
  return AUTHORIZED_KEYS_FILE.replace('%u', name);
}

/**
 * What the server's prune puts in place of a log over LOG_SIZE_LIMIT, under
 * the same name (docs/protocol.md §5): a whole gzip log, read by status as
 * any other, so the result in the name still counts.
 */
export const OVERSIZE_LOG_TEXT =
  "This log was larger than LOG_SIZE_LIMIT when it reached the bento server: the server's prune (prune-logs.sh) replaced its content by this note. Its name, and the result in it, are kept.\n";

let sharedEngine: TemplateEngine | undefined;

function engine(): TemplateEngine {
  sharedEngine ??= createTemplateEngine();
  return sharedEngine;
}

/**
 * The files a machine receives next to its configuration, as paths of
 * generated/ and the names they get there. The .gitignore and the units are
 * the same for every machine and are rendered once, as is the client's
 * library (the code every update.sh runs); the .gitignore is kept
 * as `gitignore` in generated/, where its real name would hide the scripts
 * from the fleet's own git repository.
 */
export function clientFilesOf(systemName: string): { generated: string; published: string }[] {
  return [
    { generated: 'client/gitignore', published: '.gitignore' },
    { generated: 'client/bento-module.nix', published: 'bento-module.nix' },
    { generated: 'client/bento-units.nix', published: 'bento-units.nix' },
    { generated: `client/${CLIENT_LIBRARY_NAME}`, published: CLIENT_LIBRARY_NAME },
    { generated: `systems/${systemName}/bootstrap.sh`, published: 'bootstrap.sh' },
    { generated: `systems/${systemName}/update.sh`, published: 'update.sh' },
  ];
}

/**
 * The longest a client's run keeps trying to connect before it gives up,
 * all its SFTP sessions together (templates/client/lib/connect.sh):
 * CONNECT_RETRY is one budget for the run, from which every session takes
 * the time it spent before its last round of attempts (failed rounds and
 * pauses), so no new round starts once it is spent; the round then under
 * way tries each server once (each connection attempt ending after TIMEOUT,
 * ssh's ConnectTimeout, which covers the TCP connection and the banner), and
 * the sessions after the first try only the server it chose. A server that
 * took the connection but is slow to log in is bounded by its own
 * LoginGraceTime instead. The check after a switch has a window of its own
 * (TIMEOUT; docs/protocol.md §6 step 5).
 */
export function connectGiveUpSeconds(config: Pick<Config, 'connectRetry' | 'remoteHosts' | 'timeout'>): number {
  return config.connectRetry + config.remoteHosts.length * config.timeout;
}

/**
 * The servers of REMOTE_IP, split as the listen-update socket takes them:
 * addresses (systemd's IPAddressAllow= filters those) and host names (which
 * systemd cannot filter: the connection's instance resolves them).
 */
export function listenAllowedPeers(remoteHosts: readonly string[]): { addresses: string[]; hosts: string[] } {
  return {
    addresses: remoteHosts.filter((host) => isIP(host) !== 0),
    hosts: remoteHosts.filter((host) => isIP(host) === 0),
  };
}

function clientSettings(config: Config) {
  const peers = listenAllowedPeers(config.remoteHosts);
  return {
    // One per line: a line is one server, whatever it holds.
    remoteHosts: config.remoteHosts.join('\n'),
    remoteHost: config.remoteIp,
    // sftp wants an IPv6 address in brackets (user@[::1]); ssh does not.
    sftpHost: config.remoteIp.includes(':') ? `[${config.remoteIp}]` : config.remoteIp,
    remotePort: config.remotePort,
    timeout: config.timeout,
    connectRetry: config.connectRetry,
    connectGiveUp: connectGiveUpSeconds(config),
    rebuildArgs: config.rebuildArgs,
    updateCalendar: config.updateCalendar,
    updateRandomDelay: config.updateRandomDelay,
    rebootCalendar: config.rebootCalendar,
    listenPort: config.listenPort,
    listenAllowedAddresses: peers.addresses,
    listenAllowedHosts: peers.hosts,
    logSizeLimit: config.logSizeLimit,
    // 1: machines reboot only with a slot of bento reboots (REBOOT_MAX).
    rebootSlots: config.rebootMax > 0 ? 1 : 0,
    // The log header's version (docs/protocol.md §5), defined where it is parsed.
    logProtocol: LOG_PROTOCOL_VERSION,
  };
}

const moduleCopies = new Map<string, string>();

/**
 * A copy of one of bento's generic NixOS modules (nix/modules/<name>.nix, the
 * flake's nixosModules.<name>), for a fleet that does not take bento from its
 * flake: the module as this bento has it, under the generated header.
 */
export function nixModuleCopy(name: 'client' | 'server'): string {
  let text = moduleCopies.get(name);
  if (text === undefined) {
    const source = readFileSync(path.join(NIX_MODULES_DIR, `${name}.nix`), 'utf8');
    text = `# ${GENERATED_HEADER}
# (a copy of bento's nix/modules/${name}.nix, its flake's nixosModules.${name})
#
${source}`;
    moduleCopies.set(name, text);
  }
  return text;
}

/**
 * The client files every machine shares: its .gitignore, the client module
 * (bento-module.nix: options and systemd units) and the fleet's settings for
 * it (bento-units.nix, which make the machine's Nix trust `serverPublicKey`
 * when given), and the client's library (client-library.ts), which update.sh
 * reads.
 */
export function renderClientFiles(config: Config, templates = engine(), serverPublicKey = ''): RenderedFile[] {
  const context = { ...clientSettings(config), serverPublicKey };
  return [
    { path: `client/${CLIENT_LIBRARY_NAME}`, content: renderClientLibrary(), mode: DATA, bytes: [clientLibraryBytes()] },
    { path: 'client/bento-module.nix', content: nixModuleCopy('client'), mode: DATA },
    { path: 'client/bento-units.nix', content: templates.render('client/bento-units.nix', context), mode: DATA },
    { path: 'client/gitignore', content: templates.render('client/gitignore', context), mode: DATA },
  ];
}

/** What bootstrap.sh holds after the library. */
const BOOTSTRAP_TAIL = '\nmain "$@"\n';
const BOOTSTRAP_TAIL_BYTES = Buffer.from(BOOTSTRAP_TAIL, 'utf8');

/**
 * The scripts of one system. A prebuilt system's carry the public key it
 * trusts for the closures and where it downloads them (docs/protocol.md §11).
 */
export function renderSystemFiles(
  config: Config,
  system: Pick<FleetSystem, 'name' | 'kind' | 'prebuilt' | 'rebootWindow'>,
  templates = engine(),
  signingKey?: Pick<SigningKey, 'publicKey'>,
): RenderedFile[] {
  return systemFiles(config, clientSettings(config), system, templates, signingKey);
}

/** renderSystemFiles, given the settings every machine shares: a fleet computes them once, not once per machine. */
function systemFiles(
  config: Config,
  settings: ReturnType<typeof clientSettings>,
  system: Pick<FleetSystem, 'name' | 'kind' | 'prebuilt' | 'rebootWindow'>,
  templates: TemplateEngine,
  signingKey?: Pick<SigningKey, 'publicKey'>,
): RenderedFile[] {
  if (system.prebuilt && !signingKey) throw new Error(`${system.name} is prebuilt, but no signing key was loaded`);
  const prebuilt = {
    prebuilt: system.prebuilt ? 1 : 0,
    cacheKey: system.prebuilt ? (signingKey?.publicKey ?? '') : '',
    cacheUrl: system.prebuilt ? config.cacheUrl : '',
  };
  // When the machine may reboot (REBOOT_WINDOW): its text for people and
  // the heartbeat, and the numbers the client compares with `date`.
  const window = system.rebootWindow;
  const reboot = { rebootWindow: window?.text ?? '', rebootDays: window?.days ?? '', rebootFrom: window?.from ?? 0, rebootTo: window?.to ?? 0 };
  const context = { ...settings, ...prebuilt, ...reboot, name: system.name, flake: system.kind === 'flake' ? 1 : 0, librarySha256: clientLibraryDigest() };
  const dir = `systems/${system.name}`;
  // bootstrap.sh runs alone on a new machine: its settings and the whole
  // library. update.sh is the settings, and the loader of the library
  // published beside it (docs/protocol.md §4). What follows the settings is
  // the same for every machine, encoded once.
  const head = `${templates.render('client/bootstrap.sh', context)}\n`;
  const bootstrap = `${head}${renderClientLibrary()}${BOOTSTRAP_TAIL}`;
  const updateHead = `${templates.render('client/update.sh', context)}\n`;
  const tail = updateTail();
  return [
    { path: `${dir}/bootstrap.sh`, content: bootstrap, mode: SCRIPT, bytes: [Buffer.from(head, 'utf8'), clientLibraryBytes(), BOOTSTRAP_TAIL_BYTES] },
    { path: `${dir}/update.sh`, content: `${updateHead}${tail.text}`, mode: SCRIPT, bytes: [Buffer.from(updateHead, 'utf8'), tail.bytes] },
  ];
}

let loader: string | undefined;

/** templates/client/load-library.sh, without its shellcheck directive (update.sh says which shell it is). */
function loaderBody(): string {
  loader ??= readFileSync(path.join(TEMPLATES_DIR, 'client', 'load-library.sh'), 'utf8').replace(/^# shellcheck shell=sh\n/, '');
  return loader;
}

let sharedUpdateTail: { text: string; bytes: Buffer } | undefined;

/** What update.sh holds after its settings: the library's loader, then the call of its main. */
function updateTail(): { text: string; bytes: Buffer } {
  if (sharedUpdateTail === undefined) {
    const text = `${loaderBody()}\nload_library\nmain "$@"\n`;
    sharedUpdateTail = { text, bytes: Buffer.from(text, 'utf8') };
  }
  return sharedUpdateTail;
}

/**
 * The Match block goes into services.openssh.extraConfig, which nixpkgs
 * pastes into an unquoted heredoc (`cat … - >$out <<EOL`, sshconf in
 * nixos/modules/services/networking/ssh/sshd.nix): a `$`, backtick or
 * backslash there is expanded by the shell at build time (a backtick runs a
 * command), and a line `EOL` ends the text early. No value of the fleet
 * reaches that text; this keeps a template edit from adding one.
 */
export function checkHeredocText(text: string, label: string): string {
  const bad = /[$`\\]/.exec(text);
  if (bad) throw new Error(`${label}: the text for services.openssh.extraConfig holds ${JSON.stringify(bad[0])}, which nixpkgs' unquoted heredoc would expand`);
  if (text.split('\n').includes('EOL')) throw new Error(`${label}: the text for services.openssh.extraConfig holds a line EOL, which ends nixpkgs' heredoc`);
  return text;
}

/** The server side: NixOS module (the generic module, the fleet's settings, the file that joins them), sshd_config snippet, setup script for other distributions, the logs/ prune, Prometheus alert rules. */
export function renderServerFiles(input: RenderInput, templates = engine()): RenderedFile[] {
  const { config } = input;
  const uids = assignUids(input.uids ?? new Map(), input.systems.map((system) => system.name), config.sftpUids).uids;
  const systems = input.systems.map((system) => {
    const home = path.posix.join(config.chrootDir, system.name);
    return { name: system.name, uid: uids.get(system.name) ?? 0, home, logsDir: `${home}/logs`, key: system.key?.line ?? '' };
  });
  // setup-debian.sh's list of the fleet's accounts: name, uid, key, one a line.
  const accountList = systems.map((system) => `${system.name} ${system.uid} ${system.key}`.trimEnd()).join('\n');
  const sizing = sizeSshd(systems.length, config);
  const sshdContext = { chrootDir: config.chrootDir, authorizedKeysFile: AUTHORIZED_KEYS_FILE, systemCount: systems.length, ...sizing };
  // The whole file for sshd_config.d (Debian); the NixOS module sets the
  // global lines through services.openssh.settings, which nixpkgs writes
  // first, and appends only the Match block.
  const sshdConfig = templates.render('server/sshd_config', { ...sshdContext, globals: true });
  const sshdSnippet = checkHeredocText(templates.render('server/sshd_config', { ...sshdContext, globals: false }), 'server/sshd_config');
  const pruneLogs = templates.render('server/prune-logs.sh', {
    chrootDir: config.chrootDir,
    logSizeLimit: config.logSizeLimit,
    oversizeLog: printfOctal(storedGzip(OVERSIZE_LOG_TEXT)),
    escapeSed: sedByteEscapes(),
  });
  // setup-debian.sh sets up the bento-notify timer only when there is a hook to call.
  const notify = config.notifyCommand !== '' || config.notifyUrl !== '';
  // And the bento-reboots timer only with REBOOT_MAX (docs/reboots.md).
  const reboots = config.rebootMax > 0;
  const context = { chrootDir: config.chrootDir, systems, accountList, uidRange: config.sftpUids, sshdConfig, sshdSnippet, pruneLogs, notify, reboots, fleetCommands: notify || reboots, systemCount: systems.length, ...sizing };
  return [
    // Static: the alert rules read only bento's metric names, which no fleet value changes.
    { path: 'server/bento-alerts.yml', content: templates.render('server/bento-alerts.yml', {}), mode: DATA },
    { path: 'server/bento-server-module.nix', content: nixModuleCopy('server'), mode: DATA },
    { path: 'server/bento-server-settings.nix', content: templates.render('server/bento-server-settings.nix', context), mode: DATA },
    { path: 'server/prune-logs.sh', content: pruneLogs, mode: SCRIPT },
    { path: 'server/setup-debian.sh', content: templates.render('server/setup-debian.sh', context), mode: SCRIPT },
    { path: 'server/sftp-server.nix', content: templates.render('server/sftp-server.nix', context), mode: DATA },
    { path: 'server/sshd_config', content: sshdConfig, mode: DATA },
  ];
}

/** Every file of generated/ for this fleet, sorted by path. */
export function renderFleet(input: RenderInput): RenderedFile[] {
  const settings = clientSettings(input.config);
  const files = [
    ...renderServerFiles(input),
    ...renderClientFiles(input.config, engine(), input.signingKey?.publicKey ?? ''),
    ...input.systems.flatMap((system) => systemFiles(input.config, settings, system, engine(), input.signingKey)),
  ];
  return files.sort(byText((file) => file.path));
}
