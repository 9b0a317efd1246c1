// A synthetic chroot for `bento status`: `systems` machines × `logs` logs
// each, as deploy and the clients leave them. Three systems in four are
// flake systems with a line in states.txt, every other one of those running
// its expected configuration; three in four send heartbeats
// (docs/protocol.md §5a), the fourth is an older client; one log in seven
// is a failure, rollback or autoupdate.
import { mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const RESULTS = ['success', 'failure', 'rollback', 'autoupdate'];
/** A small whole log, as a client uploads it: status checks the logs a verdict rests on. */
const LOG = gzipSync('bento update\n'.repeat(200));

/** A deterministic 32-character nix hash for `n`. */
function hashOf(n) {
  let text = '';
  let x = (n + 1) * 2654435761;
  for (let i = 0; i < 32; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    text += NIX32[x % 32];
  }
  return text;
}

const hostName = (s) => `host-${String(s).padStart(4, '0')}`;
const expectedOf = (s) => `${hashOf(s * 1000)}-nixos-system-${hostName(s)}-24.05`;

/** Fills the chroot `dir` and writes the fleet directory `dir/.fleet` status reads CHROOT_DIR from; returns that fleet directory. */
export async function buildStatusChroot(dir, systems, logs) {
  const now = Date.now() / 1000;
  const states = [];
  for (let s = 0; s < systems; s++) {
    const name = hostName(s);
    const isFlake = s % 4 !== 0;
    const expected = expectedOf(s);
    if (isFlake) states.push(`${name}=${expected}`);
    const logsDir = path.join(dir, name, 'logs');
    await mkdir(logsDir, { recursive: true });
    await mkdir(path.join(dir, name, 'config'));
    const changed = path.join(dir, name, 'last_change_date');
    await writeFile(changed, '');
    await utimes(changed, now - 3600, now - 3600);
    await Promise.all(
      Array.from({ length: logs }, async (_, l) => {
        const age = (logs - l) * 7200 - (s % 3) * 3000;
        const day = new Date((now - age) * 1000);
        const stamp = `${day.toISOString().slice(0, 10).replace(/-/g, '')}-${day.toISOString().slice(11, 16).replace(':', '')}`;
        const store = l === logs - 1 && isFlake && s % 2 ? expected : `${hashOf(s * 1000 + l + 1)}-nixos-system-${name}-24.05`;
        const file = path.join(logsDir, `${stamp}_${store}_${RESULTS[(s + l) % 7 === 0 ? (s + l) % 4 : 0]}.log.gz`);
        await writeFile(file, LOG);
        await utimes(file, now - age, now - age);
      }),
    );
    if (s % 4 !== 3) await writeHeartbeat(logsDir, name, expected, now - 60 - (s % 500));
    // The last log arrived a while ago (a directory changed in the last
    // seconds is read again on every run: status/log-cache.ts).
    await utimes(logsDir, now - 600, now - 600);
  }
  await writeFile(path.join(dir, 'states.txt'), `${states.join('\n')}\n`);
  return writeStatusFleet(dir);
}

/** The fleet directory of the chroot `dir`: only a config.sh naming it. */
export async function writeStatusFleet(dir) {
  const fleet = path.join(dir, '.fleet');
  await mkdir(fleet, { recursive: true });
  await writeFile(path.join(fleet, 'config.sh'), `CHROOT_DIR=${dir}\nREMOTE_IP=192.0.2.1\n`);
  return fleet;
}

/** The client's heartbeat (docs/protocol.md §5a): written under a temporary name, renamed into logs/. */
async function writeHeartbeat(logsDir, name, running, time) {
  const temporary = path.join(logsDir, '.heartbeat.tmp-1');
  await writeFile(temporary, `bento heartbeat of ${name} on x\nprotocol: 2\nrunning: ${running}\nbooted: ${running}\nreboot-pending: no\n\n`);
  if (time !== undefined) await utimes(temporary, time, time);
  await rename(temporary, path.join(logsDir, 'heartbeat'));
}

/** Every machine with a heartbeat polls once more: its heartbeat renamed into place now. */
export async function pollAll(dir, systems) {
  for (let s = 0; s < systems; s++) {
    if (s % 4 === 3) continue;
    await writeHeartbeat(path.join(dir, hostName(s), 'logs'), hostName(s), expectedOf(s));
  }
}

/** The rows of `bento status --once` that name a machine. */
export const statusRows = (stdout) => stdout.split('\n').filter((line) => line.startsWith('host-')).length;
