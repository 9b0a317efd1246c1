/**
 * Watch mode: redraw when something under CHROOT_DIR that status reads
 * changes, until told to stop. Driven by file-system events (inotify on
 * Linux), never by polling the disk.
 *
 * node's fs.watch is used rather than chokidar: status needs exactly three
 * kinds of directories (CHROOT_DIR, each <name>/, each <name>/logs/), known
 * after every read, and watching them directly costs no start-up walk or stat
 * of every log, which chokidar does (20,000 files on a large fleet). Events on
 * a parent directory cover what appears later: a new system directory, a
 * recreated logs/, a touched last_change_date.
 */
import { watch, type FSWatcher } from 'node:fs';
import { LAST_CHANGE_DATE, LOGS_DIR, systemChroot } from '../protocol/layout.js';

export interface WatchChrootOptions {
  chrootDir: string;
  /** Reads CHROOT_DIR and draws; resolves with the system names it found, whose directories are then watched. */
  refresh: () => Promise<readonly string[]>;
  /** Redraws from what was last read, without reading the disk (elapsed times keep moving). */
  tick?: () => void;
  tickMs?: number;
  /** Quiet time after the last event before a refresh: a deploy touches many files at once. */
  debounceMs?: number;
  /**
   * The longest a change waits for its refresh, however often events keep
   * coming: a machine writing into its logs/ every 0.1 s would otherwise
   * reset the quiet time forever and freeze the screen while another fails.
   */
  maxWaitMs?: number;
  /**
   * Refreshes at least this often with no event at all: time alone makes a
   * machine silent (SILENT_AFTER), and a machine that stopped writes nothing.
   */
  refreshEveryMs?: number;
  /** Watching ends when it aborts. */
  signal: AbortSignal;
}

/** Which entries of a watched directory matter, by kind of directory. */
type DirectoryKind = 'root' | 'system' | 'logs';
/** The entries of a system directory that status reads. */
const SYSTEM_ENTRIES = new Set([LAST_CHANGE_DATE, LOGS_DIR]);

/**
 * Refreshes once, then after every relevant change, until `signal` aborts.
 * Refreshes never overlap: changes during one lead to exactly one more.
 */
export async function watchChroot(options: WatchChrootOptions): Promise<void> {
  const { chrootDir, signal } = options;
  const debounceMs = options.debounceMs ?? 200;
  const maxWaitMs = Math.max(options.maxWaitMs ?? 1000, debounceMs);
  const watchers = new Map<string, FSWatcher>();
  let debounce: NodeJS.Timeout | undefined;
  /** When the first event not yet refreshed for came. */
  let pendingSince: number | undefined;
  let running: Promise<void> | undefined;
  let dirty = false;
  let failure: unknown;

  return new Promise<void>((resolve, reject) => {
    const stop = (error?: unknown) => {
      clearTimeout(debounce);
      clearInterval(ticker);
      clearInterval(rereader);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
      signal.removeEventListener('abort', onAbort);
      // Let a refresh in progress finish, so nothing is drawn after we return.
      void (running ?? Promise.resolve()).then(() => (error === undefined ? resolve() : reject(error)));
    };
    const onAbort = () => stop(failure);

    const refresh = async () => {
      do {
        dirty = false;
        try {
          const names = await options.refresh();
          if (!signal.aborted) reconcileWatchers(names);
        } catch (error) {
          failure = error;
          stop(error);
          return;
        }
      } while (dirty && !signal.aborted);
    };

    const schedule = () => {
      if (signal.aborted) return;
      const now = Date.now();
      pendingSince ??= now;
      clearTimeout(debounce);
      // Debounced, but never past pendingSince + maxWaitMs.
      const wait = Math.max(0, Math.min(debounceMs, pendingSince + maxWaitMs - now));
      debounce = setTimeout(() => {
        pendingSince = undefined;
        if (running) {
          dirty = true;
          return;
        }
        running = refresh().finally(() => (running = undefined));
      }, wait);
    };

    const reconcileWatchers = (names: readonly string[]) => {
      const wanted = new Map<string, DirectoryKind>([[chrootDir, 'root']]);
      for (const name of names) {
        const chroot = systemChroot(chrootDir, name);
        wanted.set(chroot.dir, 'system');
        wanted.set(chroot.logs, 'logs');
      }
      for (const [dir, watcher] of watchers) {
        if (!wanted.has(dir)) {
          watcher.close();
          watchers.delete(dir);
        }
      }
      for (const [dir, kind] of wanted) {
        if (!watchers.has(dir)) startWatcher(dir, kind);
      }
    };

    const startWatcher = (dir: string, kind: DirectoryKind) => {
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, { persistent: true }, (_event, file) => {
          if (isRelevant(kind, file)) schedule();
        });
      } catch {
        // Missing, or not a directory: the read that just ran has warned
        // about it, and its parent's watcher will see it appear.
        return;
      }
      watcher.on('error', () => {
        // The directory went away (or was replaced): forget it, read again.
        watcher.close();
        watchers.delete(dir);
        schedule();
      });
      watchers.set(dir, watcher);
    };

    const ticker = options.tick ? setInterval(options.tick, options.tickMs ?? 1000) : undefined;
    const rereader = setInterval(schedule, options.refreshEveryMs ?? 60_000);
    if (signal.aborted) {
      stop();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    running = refresh().finally(() => (running = undefined));
  });
}

function isRelevant(kind: DirectoryKind, file: string | Buffer | null): boolean {
  // Some platforms do not say which entry changed: assume it matters.
  if (file === null) return true;
  const name = file.toString();
  switch (kind) {
    case 'root':
      // states.txt, or a system directory appearing or going; dot files are
      // temporary files of an atomic write, whose rename is seen anyway.
      return !name.startsWith('.');
    case 'system':
      return SYSTEM_ENTRIES.has(name);
    case 'logs':
      return true;
  }
}
