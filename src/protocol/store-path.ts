/**
 * Store path basenames (`<32-char hash>-<name>`), as they travel in the chroot
 * protocol: in states.txt (what a machine should run) and in log names (what
 * it ran). One rule for both readers; see docs/protocol.md.
 */

/** Nix's base32 alphabet: digits and lower case letters without e, o, u, t. */
export const NIX_HASH = /^[0-9a-df-np-sv-z]{32}$/;
/** Characters nix accepts in a store path name (after the hash and dash). */
const STORE_NAME = /^[A-Za-z0-9+\-._?=]+$/;

/** Why `basename` is not a store path basename, or undefined when it is one. */
export function storeBasenameProblem(basename: string): string | undefined {
  const hash = basename.slice(0, 32);
  if (!NIX_HASH.test(hash)) return 'the store path does not start with a 32-character nix hash';
  if (basename[32] !== '-') return 'the store path hash is not followed by "-"';
  const name = basename.slice(33);
  if (name === '') return 'the store path has no name after its hash';
  if (name.startsWith('.')) return 'the store path name starts with "."';
  if (!STORE_NAME.test(name)) return 'the store path name has characters nix does not allow';
  return undefined;
}
