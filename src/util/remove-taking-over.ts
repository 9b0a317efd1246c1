/**
 * Removing a directory tree that another user may change while it is
 * removed: the evaluator's home (nix/unprivileged.ts), where Nix, run as
 * that user, keeps its caches and temporary files.
 *
 * A recursive removal by root (fs.rm) looks at a directory, then steps into
 * it by its path; the directory's owner may swap it for a link in between
 * (any process of that user: nobody, on a server without bento-eval), and
 * root would remove what the link leads to. So here each directory is made
 * root's and closed to others before it is listed: its entries can then no
 * longer be renamed, replaced or added, and a link among them is removed,
 * never followed. That needs the tree's parent to be root's (a name in it
 * stays the directory that was looked at).
 */
import { chmodSync, lchownSync, lstatSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * Removes the directory `dir` (in a directory of root's) and everything
 * below it, taking each directory over before listing it when run as root;
 * not root, a plain recursive removal (nothing there can be another
 * user's). `beforeListing` (tests) runs between the two. What cannot be
 * removed is left; a missing `dir` is no error.
 */
export function removeTakingOver(dir: string, beforeListing: (dir: string) => void = () => {}): void {
  if (process.getuid?.() !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const remove = (current: string) => {
    lchownSync(current, 0, 0);
    chmodSync(current, 0o700); // a directory: its parent, root's, holds the name in place
    beforeListing(current);
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) remove(full);
      else unlinkSync(full);
    }
    rmdirSync(current);
  };
  try {
    if (lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) remove(dir);
    else rmSync(dir, { force: true });
  } catch {
    // Left as it is: a temporary directory is swept again by the next bento (temp-dir.ts).
  }
}
