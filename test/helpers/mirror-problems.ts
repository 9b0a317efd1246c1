/**
 * The rule that tests mirror src/ (CONTRIBUTING.md, Tests): `src/a/b.ts` is
 * tested in `test/a/b.test.ts`, or in a variant of it named after the module
 * (`test/a/b-hostile.test.ts`). A pure function, so that a test can run it on
 * the real tree and on planted mistakes alike.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

/** Every file under `dir` of `root` ending in `suffix`, as a path from root. */
function listFiles(root: string, dir: string, suffix: string): string[] {
  const found: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of readdirSync(path.join(root, relative), { withFileTypes: true })) {
      const child = path.posix.join(relative, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith(suffix)) found.push(child);
    }
  };
  walk(dir);
  return found.sort();
}

/** The modules of src/, as paths under src/ (`chroot/publish.ts`). */
export function listModules(root: string): string[] {
  return listFiles(root, 'src', '.ts').map((file) => file.slice('src/'.length));
}

/** Every vitest file under test/, as a path from the repository's root. */
export function listTests(root: string): string[] {
  return listFiles(root, 'test', '.test.ts');
}

/**
 * The test files that mirror `module`: `test/a/b.test.ts`, and `test/a/b-x.test.ts`
 * unless `src/a/b-x.ts` is a module of its own (whose mirror it is).
 */
export function mirrorsOf(module: string, modules: ReadonlySet<string>, tests: readonly string[]): string[] {
  const stem = `test/${module.slice(0, -'.ts'.length)}`;
  return tests.filter((test) => {
    if (test === `${stem}.test.ts`) return true;
    if (!test.startsWith(`${stem}-`)) return false;
    const other = `${test.slice('test/'.length, -'.test.ts'.length)}.ts`;
    return !modules.has(other);
  });
}

/**
 * What is wrong, one message each naming the module: a module with no mirror
 * that the allowlist does not name; an allowlisted module that has a mirror
 * (take it off the list) or that does not exist.
 */
export function mirrorProblems(modules: readonly string[], tests: readonly string[], allowlist: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const known = new Set(modules);
  for (const module of modules) {
    const mirrored = mirrorsOf(module, known, tests).length > 0;
    const allowed = Object.hasOwn(allowlist, module);
    if (!mirrored && !allowed) problems.push(`src/${module}: no test/${module.replace(/\.ts$/, '.test.ts')} (or a variant of it); write one, or allowlist it in test/mirror.test.ts with the reason`);
    if (mirrored && allowed) problems.push(`src/${module}: allowlisted in test/mirror.test.ts but mirrored by ${mirrorsOf(module, known, tests).join(', ')}; take it off the list`);
  }
  for (const module of Object.keys(allowlist)) {
    if (!known.has(module)) problems.push(`src/${module}: allowlisted in test/mirror.test.ts but there is no such module`);
  }
  return problems;
}
