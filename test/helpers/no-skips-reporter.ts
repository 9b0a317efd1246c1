/**
 * A vitest reporter that fails the run when a test was skipped. Tests that
 * need root (users, chroots, mount namespaces) or sshd skip themselves where
 * they cannot run (`skipIf(!isRoot)`), and a run that skipped them would
 * otherwise be green with the rollback, retry and deploy tests left out. So
 * every skip is a failure, named here, unless the run asked for a part of
 * the suite (`-t PATTERN`, which marks the other tests skipped) or the
 * developer said so (BENTO_ALLOW_SKIPS=1, for a run without root that only
 * wants what can run; the count is still printed).
 */
import path from 'node:path';
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class NoSkipsReporter implements Reporter {
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.filtered = Boolean(vitest.config.testNamePattern);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const skipped: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests('skipped')) {
        if (test.options.mode === 'todo') continue;
        skipped.push(`${path.relative(process.cwd(), module.moduleId)} > ${test.fullName}`);
      }
    }
    if (skipped.length === 0 || this.filtered) return;
    if (process.env.BENTO_ALLOW_SKIPS === '1') {
      process.stdout.write(`\n${skipped.length} test(s) skipped, allowed by BENTO_ALLOW_SKIPS=1: this run is not the whole suite\n`);
      return;
    }
    const list = skipped.slice(0, 20).map((name) => `  ${name}`).join('\n');
    const more = skipped.length > 20 ? `\n  … and ${skipped.length - 20} more` : '';
    process.stderr.write(
      `\n${skipped.length} test(s) were skipped, which fails the run (they need root or /usr/sbin/sshd: run as root after sh scripts/setup.sh; BENTO_ALLOW_SKIPS=1 accepts a partial run):\n${list}${more}\n`,
    );
    process.exitCode = 1;
  }
}
