/**
 * SSH public keys of the machines (keys/<name>.pub). A key ends up in sshd's
 * authorized keys and in generated Nix, so its shape is checked strictly:
 * one line, a known type, base64 whose embedded type matches, an optional
 * printable comment.
 */

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

export interface PublicKey {
  type: string;
  /** The base64 blob. */
  data: string;
  comment: string;
  /** The normalised single line: `type data [comment]`. */
  line: string;
}

/** The first line of a private key, in the formats ssh-keygen, OpenSSL and PuTTY write. */
const PRIVATE_KEY = /^\s*(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|PuTTY-User-Key-File-[0-9]+:)/m;

/** What a message may quote of a key file: a word shaped like a key type, never a secret. */
const TYPE_WORD = /^[A-Za-z0-9@._-]{1,40}$/;

/**
 * Parses the contents of a .pub file; throws an Error whose message says
 * what is wrong. A message never quotes the file, but for a word shaped
 * like a key type: a private key saved under that name is said to be one.
 */
export function parsePublicKey(text: string): PublicKey {
  if (PRIVATE_KEY.test(text)) {
    throw new Error(
      "the file holds a private key, not a public one: take it out of the fleet directory (whoever read it, or the fleet's git history, can log in as this machine: if it was ever committed or copied, make a new key pair on the machine) and put the public key there (ssh-keygen -y -f <private key> prints it)",
    );
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (lines.length === 0) throw new Error('the file holds no key');
  if (lines.length > 1) throw new Error(`the file must hold exactly one key line, found ${lines.length}`);
  const line = (lines[0] as string).trim();
  if (/[\x00-\x1f\x7f]/.test(line)) throw new Error('the key line contains control characters');
  const [type = '', data = '', ...commentWords] = line.split(/\s+/);
  if (!KEY_TYPES.has(type)) {
    const what = TYPE_WORD.test(type) ? `unsupported key type ${JSON.stringify(type)}` : 'the line does not start with a key type';
    throw new Error(`${what} (expected one of ${[...KEY_TYPES].join(', ')}; options before the key are not allowed)`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0) throw new Error('the key data is not valid base64');
  const blob = Buffer.from(data, 'base64');
  const embeddedType = readSshString(blob);
  if (embeddedType !== type) throw new Error(`the key data does not match its type ${type}`);
  const comment = commentWords.join(' ');
  return { type, data, comment, line: comment ? `${type} ${data} ${comment}` : `${type} ${data}` };
}

/** Reads the first length-prefixed string of an SSH wire-format blob. */
function readSshString(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length > 64 || blob.length < 4 + length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}
