/**
 * Store path basenames (`<32-char hash>-<name>`), as they travel in the chroot
 * protocol: in states.txt (what a machine should run) and in log names (what
 * it ran). One rule for both readers; see docs/protocol.md.
 */

/** Nix's base32 alphabet: digits and lower case letters without e, o, u, t. */
export const NIX_HASH = /^[0-9a-df-np-sv-z]{32}$/;
/** Characters nix accepts in a store path name (after the hash and dash). */
const STORE_NAME = /^[A-Za-z0-9+\-._?=]+$/;
/**
 * The longest name nix accepts (StorePath::MaxPathLen; nix 2.8 takes a
 * longer one for no store path). A log name cannot hold a longer one, a
 * heartbeat's 4 KiB could: it would travel as a store path into status's
 * JSON, its Prometheus label and the alerts.
 */
const STORE_NAME_MAX = 211;

/** Why `basename` is not a store path basename, or undefined when it is one. */
export function storeBasenameProblem(basename: string): string | undefined {
  const hash = basename.slice(0, 32);
  if (!NIX_HASH.test(hash)) return 'the store path does not start with a 32-character nix hash';
  if (basename[32] !== '-') return 'the store path hash is not followed by "-"';
  const name = basename.slice(33);
  if (name === '') return 'the store path has no name after its hash';
  if (name.length > STORE_NAME_MAX) return `the store path name is longer than the ${STORE_NAME_MAX} characters nix allows`;
  if (name.startsWith('.')) return 'the store path name starts with "."';
  if (!STORE_NAME.test(name)) return 'the store path name has characters nix does not allow';
  return undefined;
}
