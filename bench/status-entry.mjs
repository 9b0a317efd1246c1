// One `bento status --once` as a whole process, without the CLI wiring:
// node bench/status-entry.mjs CHROOT_DIR [--json]. Needs `npm run build`.
import process from 'node:process';
import { statusCommand } from '../dist/commands/status.js';

const [chrootDir, ...flags] = process.argv.slice(2);
if (!chrootDir) {
  process.stderr.write('usage: node bench/status-entry.mjs CHROOT_DIR [--json]\n');
  process.exit(1);
}
process.exitCode = await statusCommand({
  chrootDir,
  once: true,
  json: flags.includes('--json'),
  stdout: process.stdout,
  isTTY: false,
  noColor: true,
});
