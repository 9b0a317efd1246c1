/**
 * The rules of the test tiers (test/tiers.ts), as a pure function so that a
 * test can run them on the real tree and on planted mistakes alike.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Every vitest file under test/, as a path from the repository's root. */
export function listTestFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(relative);
    }
  };
  walk('test');
  return found.sort();
}

/** A file that skips itself where it cannot run (`it.skipIf(!isRoot)`, …). */
const SKIPS_ITSELF = /\.(skipIf|runIf)\(/;
/** Helpers a pure or shell test may not use: the built CLI, Nix, the server's users and chroots. */
const NEEDS_MORE = /from '[./]*helpers\/(cli|nixos|server)\.js'/;

/**
 * What is wrong with `tiers` for these test files, one message each naming
 * the file: none when every file is in exactly one tier, every listed file
 * exists, a file that skips itself is in the root tier, and a pure or shell
 * file uses none of the helpers that need more than it has.
 */
export function tierProblems(files: readonly string[], tiers: Readonly<Record<string, readonly string[]>>, readSource: (file: string) => string): string[] {
  const problems: string[] = [];
  const tiersOf = new Map<string, string[]>();
  for (const [tier, listed] of Object.entries(tiers)) {
    for (const file of listed) tiersOf.set(file, [...(tiersOf.get(file) ?? []), tier]);
  }
  for (const file of files) {
    const placed = tiersOf.get(file) ?? [];
    if (placed.length === 0) {
      problems.push(`${file}: in no tier; add it to one in test/tiers.ts`);
      continue;
    }
    if (placed.length > 1) problems.push(`${file}: in more than one tier (${placed.join(', ')})`);
    const source = readSource(file);
    if (SKIPS_ITSELF.test(source) && !placed.includes('root')) problems.push(`${file}: skips itself where it cannot run, so it belongs to the root tier, not ${placed.join(', ')}`);
    const helper = NEEDS_MORE.exec(source);
    if (helper && (placed.includes('pure') || placed.includes('shell'))) problems.push(`${file}: uses helpers/${helper[1]}, which a ${placed.join(', ')} test may not`);
  }
  const existing = new Set(files);
  for (const file of tiersOf.keys()) {
    if (!existing.has(file)) problems.push(`${file}: listed in test/tiers.ts but there is no such test file`);
  }
  return problems;
}

/** The problems of the real tree. */
export function treeTierProblems(root: string, tiers: Readonly<Record<string, readonly string[]>>): string[] {
  return tierProblems(listTestFiles(root), tiers, (file) => readFileSync(path.join(root, file), 'utf8'));
}
