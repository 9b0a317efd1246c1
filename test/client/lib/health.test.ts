/**
 * templates/client/lib/health.sh on its own (shell tier: sourced, no root,
 * no systemd): the numbers of etc/bento/health.conf, which the server's
 * build wrote, are checked before the shell computes with them, and the
 * system's own check decides within its grace period.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

/**
 * health_gate on a system whose health.conf is `conf` and whose check is
 * `check` (none when undefined), without systemd (have_systemd stubbed):
 * its status and HEALTH_PROBLEM.
 */
function gate(conf: string, check?: string): { status: number | null; problem: string } {
  const dir = tempDir('bento-health-', cleanups);
  const system = path.join(dir, 'system');
  mkdirSync(path.join(system, 'etc', 'bento'), { recursive: true });
  writeFileSync(path.join(system, 'etc', 'bento', 'health.conf'), conf);
  if (check !== undefined) writeFileSync(path.join(system, 'etc', 'bento', 'health-check'), check);
  const script = [
    'have_systemd() { return 1; }',
    `LOG=${shellQuote(path.join(dir, 'build.log'))}; STATE_DIR=${shellQuote(dir)}; HEALTH_PAUSE=1`,
    `health_gate ${shellQuote(system)}; status=$?`,
    'printf "%s" "$HEALTH_PROBLEM"; exit $status',
  ].join('\n');
  const run = runSourced(['server-values', 'health'], script);
  return { status: run.status, problem: run.stdout };
}

describe('health_gate', () => {
  it('refuses a timeout or grace that is not a plain number of seconds, before any arithmetic', () => {
    for (const [line, shown] of [
      ['timeout=08', 'timeout=08'],
      ['timeout=0', 'timeout=0'],
      ['grace=1e3', 'grace=1e3'],
      ['grace=1234567890', 'grace=1234567890'],
      ['grace=$(reboot)', 'grace=$(reboot)'],
      ['timeout=', 'timeout='],
    ]) {
      const { status, problem } = gate(`${line}\n`, 'exit 0\n');
      expect(status, line).toBe(1);
      expect(problem, line).toBe(`etc/bento/health.conf: ${shown} is not a number of seconds (at most 9 digits, no leading zero; a timeout of 1 or more)`);
    }
  });

  it('passes with its defaults when health.conf says nothing, and with a check that passes', () => {
    expect(gate('', 'exit 0\n')).toEqual({ status: 0, problem: '' });
    expect(gate('timeout=5\ngrace=0\n', 'exit 0\n')).toEqual({ status: 0, problem: '' });
  });

  it('fails once the grace period is over with the check still failing', () => {
    expect(gate('timeout=5\ngrace=0\n', 'exit 3\n')).toEqual({ status: 1, problem: 'the health check failed (services.bento.healthCheck.command; its output is in this log)' });
  });
});
