// What a command writes, counted with strace (-f: its child processes too):
// every file opened for writing, created, renamed, removed, linked or
// re-timed/re-owned/re-moded, by path. "Nothing changed" should write
// nothing; the count says where it does.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchEnv } from './process.mjs';

const CALLS = ['open', 'openat', 'openat2', 'creat', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'mkdir', 'mkdirat', 'rmdir', 'symlink', 'symlinkat', 'link', 'linkat', 'truncate', 'utimensat', 'utimes', 'chmod', 'fchmodat', 'chown', 'lchown', 'fchownat'];
const WRITE_FLAGS = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/;

/** The paths a syscall line of `strace -y` names, each resolved against the directory descriptor before it. */
function pathsOf(args) {
  const paths = [];
  // `3</tmp/dir>, "name"` or `AT_FDCWD, "name"` or `"name"`.
  const re = /(?:(\d+)<([^>]*)>,\s*|AT_FDCWD,\s*)?"((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(args); m; m = re.exec(args)) {
    const name = m[3];
    paths.push(m[2] && !name.startsWith('/') ? path.join(m[2], name) : name);
  }
  return paths;
}

/**
 * Runs `file args` under strace and returns { total, byArea } with
 * `areas` mapping a label to a directory (the first that holds a path
 * wins; the rest is "other"). /dev, /proc and /sys are not files.
 */
export function countWrites(file, args, areas, options = {}) {
  const out = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-strace-'));
  try {
    const run = spawnSync('strace', ['-f', '-ff', '-qq', '-y', '-e', 'status=successful', '-e', `trace=${CALLS.join(',')}`, '-o', path.join(out, 'trace'), file, ...args], {
      env: benchEnv,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      ...options,
    });
    if (run.status !== 0) throw new Error(`strace ${file} ${args.join(' ')} failed: ${run.stderr.slice(-2000)}`);
    const byArea = {};
    let total = 0;
    const seen = [];
    for (const traceFile of readdirSync(out)) {
      for (const line of readFileSync(path.join(out, traceFile), 'utf8').split('\n')) {
        const m = /^(\w+)\((.*)\)\s+=\s+(\d+)/.exec(line);
        if (!m || !CALLS.includes(m[1])) continue;
        if (m[1].startsWith('open') && !WRITE_FLAGS.test(m[2])) continue;
        const target = pathsOf(m[2])[0];
        if (!target || /^\/(dev|proc|sys)\//.test(target)) continue;
        const area = Object.entries(areas).find(([, dir]) => target === dir || target.startsWith(`${dir}/`))?.[0] ?? 'other';
        byArea[area] = (byArea[area] ?? 0) + 1;
        total++;
        if (seen.length < 2000) seen.push(`${m[1]} ${target}`);
      }
    }
    return { total, byArea, calls: seen };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export function describeWrites({ total, byArea }) {
  if (total === 0) return '0 writes';
  return `${total} writes (${Object.entries(byArea)
    .sort((a, b) => b[1] - a[1])
    .map(([area, n]) => `${area} ${n}`)
    .join(', ')})`;
}

