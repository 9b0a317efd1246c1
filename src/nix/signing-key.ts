/**
 * The server's Nix signing key (docs/protocol.md §11). deploy signs the
 * closures of prebuilt systems with its secret half; the machines trust its
 * public half, which generate renders into their update.sh and into the
 * client module. It is made on first use with Nix's own
 * `nix-store --generate-binary-cache-key`, outside the fleet directory: the
 * fleet is usually a git repository, and generated/ and the chroots are
 * published, so none of them may ever hold the secret.
 *
 * A Nix key is `<name>:<base64>`; the secret's 64 bytes are libsodium's
 * Ed25519 secret key, the seed followed by the public key, so the public
 * key can always be derived from the secret (what `nix key
 * convert-secret-to-public` does in later Nix versions).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import { run } from '../exec.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { flushParentSync, flushSync } from '../util/durable.js';

export interface SigningKey {
  /** The secret key file (root's alone, 0600). */
  secretFile: string;
  /** `<secretFile>.pub`, readable by everyone: what generate reads. */
  publicFile: string;
  /** `<name>:<base64 of 32 bytes>`, as nix.conf's trusted-public-keys wants it. */
  publicKey: string;
}

/** Key names bento accepts: they reach the machines' update.sh and nix.conf. */
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function publicFileOf(secretFile: string): string {
  return `${secretFile}.pub`;
}

/** Splits `name:base64` and checks the name and the key's length (32 bytes public, 64 secret). */
export function parseNixKey(text: string, kind: 'public' | 'secret'): { name: string; key: Buffer } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  const name = trimmed.slice(0, colon);
  const data = trimmed.slice(colon + 1);
  const length = kind === 'public' ? 32 : 64;
  if (colon < 1 || !KEY_NAME.test(name)) throw new Error(`not a Nix ${kind} key: expected <name>:<base64>, the name made of letters, digits, '.', '_' and '-'`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) throw new Error(`not a Nix ${kind} key: the part after "${name}:" is not base64`);
  const key = Buffer.from(data, 'base64');
  if (key.length !== length) throw new Error(`not a Nix ${kind} key: it holds ${key.length} bytes, an Ed25519 ${kind} key ${length}`);
  return { name, key };
}

/** The public key of a Nix secret key (its last 32 bytes), in Nix's `name:base64` form. */
export function publicKeyOfSecret(secretText: string): string {
  const { name, key } = parseNixKey(secretText, 'secret');
  return `${name}:${key.subarray(32).toString('base64')}`;
}

/** The name a new key gets: the server's host name and the day, so that a rotated key has a new name. */
export function newKeyName(hostname = os.hostname(), now = new Date()): string {
  const host = hostname.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'server';
  return `bento-${host}-${now.toISOString().slice(0, 10).replace(/-/g, '')}`.slice(0, 100);
}

/**
 * The directory itself or, when it does not exist yet, its nearest existing
 * ancestor with the rest appended, with symbolic links resolved: where the
 * key would really land.
 */
function realLocation(dir: string): string {
  let existing = path.resolve(dir);
  const rest: string[] = [];
  while (!existsSync(existing) && path.dirname(existing) !== existing) {
    rest.unshift(path.basename(existing));
    existing = path.dirname(existing);
  }
  return path.join(realpathSync(existing), ...rest);
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Why the secret key may not live at `secretFile`: inside one of the
 * `forbidden` directories (the fleet, generated/, CHROOT_DIR), symbolic
 * links resolved. Undefined when the place is fine.
 */
export function signingKeyPlacementProblem(secretFile: string, forbidden: readonly { label: string; dir: string }[]): string | undefined {
  const where = path.join(realLocation(path.dirname(secretFile)), path.basename(secretFile));
  for (const { label, dir } of forbidden) {
    if (isInside(where, realLocation(dir))) {
      return `SIGNING_KEY=${secretFile} is inside ${label} (${dir}): the secret key must never be in the fleet, generated/ or a chroot (they are committed or published); keep it elsewhere, e.g. the default /var/lib/bento/signing-key`;
    }
  }
  return undefined;
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES') return undefined;
    throw error;
  }
}

export interface LoadSigningKeyOptions {
  /** Make the key when there is none (default true). */
  create?: boolean;
  /** The name of a new key (default newKeyName()). */
  keyName?: string;
}

/**
 * The signing key at `secretFile`: its public key from `<secretFile>.pub`
 * (which generate can read without root), checked against the secret when
 * the secret is readable. Without either file, a new key is made with
 * `nix-store --generate-binary-cache-key` in a private directory, made 0600,
 * and only then renamed into place: the secret is never readable by others,
 * not even for a moment. A readable secret without its .pub gets one.
 */
export async function loadSigningKey(secretFile: string, options: LoadSigningKeyOptions = {}): Promise<SigningKey> {
  const publicFile = publicFileOf(secretFile);
  const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
  let publicText = readIfExists(publicFile);
  let secretText = readIfExists(secretFile);
  if (publicText === undefined && secretText === undefined && !existsSync(secretFile)) {
    if (options.create === false) throw new UserError(`there is no signing key at ${secretFile}`, 'run `bento deploy` as root once: it creates it');
    await createSigningKey(secretFile, options.keyName ?? newKeyName());
    publicText = readFileSync(publicFile, 'utf8');
    secretText = readFileSync(secretFile, 'utf8');
  }
  let derived: string | undefined;
  if (secretText !== undefined) {
    try {
      derived = publicKeyOfSecret(secretText);
    } catch (error) {
      throw new UserError(`${secretFile}: ${describe(error)}`, 'SIGNING_KEY (config.sh) names the secret key made by nix-store --generate-binary-cache-key');
    }
  }
  if (publicText === undefined) {
    if (derived === undefined) {
      throw new UserError(`cannot read the signing key: ${publicFile} is missing and ${secretFile} is not readable by this user`, 'run bento as root once (sudo bento generate) to write the .pub next to it');
    }
    try {
      writeFileAtomicallySync(publicFile, `${derived}\n`, 0o644);
    } catch {
      // Not ours to write (a read-only place): the derived key serves this run.
    }
    return { secretFile, publicFile, publicKey: derived };
  }
  let publicKey: string;
  try {
    const { name, key } = parseNixKey(publicText, 'public');
    publicKey = `${name}:${key.toString('base64')}`;
  } catch (error) {
    throw new UserError(`${publicFile}: ${describe(error)}`);
  }
  if (derived !== undefined && derived !== publicKey) {
    throw new UserError(`${publicFile} is not the public key of ${secretFile}`, `remove ${publicFile}: bento writes it again from the secret key`);
  }
  return { secretFile, publicFile, publicKey };
}

/**
 * mkdir -p, one component at a time: Node's recursive mkdirSync spins
 * forever where a component cannot be made (under /proc, say).
 */
function makeDirectories(dir: string): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  while (!existsSync(current) && path.dirname(current) !== current) {
    missing.unshift(current);
    current = path.dirname(current);
  }
  for (const component of missing) mkdirSync(component, { mode: 0o755 });
}

async function createSigningKey(secretFile: string, name: string): Promise<void> {
  if (!KEY_NAME.test(name)) throw new Error(`bad key name ${JSON.stringify(name)}`);
  const dir = path.dirname(secretFile);
  try {
    makeDirectories(dir);
  } catch (error) {
    throw new UserError(`cannot create ${dir} for the signing key: ${(error as Error).message}`, 'run `bento deploy` as root once (it creates the key), or set SIGNING_KEY in config.sh to a place you can write');
  }
  let staging: string;
  try {
    staging = mkdtempSync(path.join(dir, '.signing-key-'));
  } catch (error) {
    throw new UserError(`cannot create the signing key in ${dir}: ${(error as Error).message}`, 'run `bento deploy` as root once (it creates the key), or set SIGNING_KEY in config.sh to a place you can write');
  }
  try {
    const secret = path.join(staging, 'secret');
    const pub = path.join(staging, 'public');
    await run('nix-store', ['--generate-binary-cache-key', name, secret, pub]);
    chmodSync(secret, 0o600);
    chmodSync(pub, 0o644);
    // On the disk before they have their names (util/durable.ts): a power
    // cut must not leave an empty key that the next deploy cannot read.
    flushSync(secret);
    flushSync(pub);
    // The secret first: killed in between, the .pub is derived from it next time.
    renameSync(secret, secretFile);
    renameSync(pub, publicFileOf(secretFile));
    flushParentSync(secretFile);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
