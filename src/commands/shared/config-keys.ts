/**
 * The config.sh key list of `bento --help`, for cli.ts, which reaches the
 * stages only through commands/ and loads this when it builds the program.
 */
export { configKeysHelp } from '../../config/describe-keys.js';
