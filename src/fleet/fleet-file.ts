/**
 * A file of the fleet directory that bento reads whole (a machine's key,
 * its REBOOT_WINDOW, uids.txt, utils/bento.nix), as root: the fleet's writers, who may be
 * less trusted than root, may put a FIFO in its place (opening it would
 * make the command, deploy's lock held, wait for a writer for ever), a link
 * to /dev/zero or a file they grow without end; or a link to a file of
 * root's, whose first line bento's message would quote (util/confined-file.ts).
 * It is read as util/read-at-most.ts reads a path someone else may write.
 */
import { UserError } from '../errors.js';
import { notToBeShownMessage } from '../util/confined-file.js';
import { IrregularFileError, readRegularFileSync } from '../util/read-at-most.js';

/** The most such a file may hold: each takes far less (uids.txt, the largest, a line per system). */
export const FLEET_FILE_LIMIT = 16 * 1024 * 1024;

/**
 * The text of the fleet's file `file`, opened without waiting, only when it
 * is a regular file (a link to one is followed), inside `realFleetDir` (the
 * fleet directory's real path, realpathSync: a caller reading a thousand
 * keys resolves it once) or one everyone may read (none: it must be one
 * everyone may read, as every file of hosts/ must), and read no further
 * than FLEET_FILE_LIMIT; otherwise a UserError naming it (`place`:
 * keys/laptop.pub) and saying what bento reads from it (`purpose`).
 * open(2)'s own errors (ENOENT, EACCES) are thrown as they are, for the
 * caller to word.
 */
export function readFleetFile(file: string, place: string, purpose: string, realFleetDir: string | undefined): string {
  try {
    return readRegularFileSync(file, FLEET_FILE_LIMIT, { confined: { boundary: realFleetDir } }).bytes.toString('utf8');
  } catch (error) {
    if (!(error instanceof IrregularFileError)) throw error;
    if (error.reason === 'not a regular file') throw new UserError(`${place} is not a regular file: bento reads ${purpose} from it`);
    if (error.reason === 'not to be shown') throw new UserError(notToBeShownMessage(place, purpose, error.why));
    throw new UserError(`${place} holds more than ${FLEET_FILE_LIMIT / 1024 / 1024} MiB: bento reads ${purpose} from it, which takes far less`);
  }
}
