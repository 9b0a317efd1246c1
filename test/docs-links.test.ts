/**
 * The documents' relative links and anchors resolve: README.md,
 * CONTRIBUTING.md, docs/*.md and the READMEs of bench/ and test/e2e/ link
 * into each other by path and by heading, and a page split or a heading
 * renamed must not leave a link behind. Anchors are GitHub's: the heading
 * in lower case, punctuation dropped, spaces as hyphens, `-1`, `-2` for
 * repeats. Links inside code are not links.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';

/** The documents whose links are checked, from the repository's root. */
function documents(root: string): string[] {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', 'CONTRIBUTING.md', 'bench/README.md', 'test/e2e/README.md', ...docs].filter((file) => existsSync(path.join(root, file)));
}

/** Text outside fenced and inline code. */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor of a heading. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*]/g, '')
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings. */
function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const text = readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '');
  for (const match of text.matchAll(/^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$/gm)) {
    const anchor = headingAnchor(match[1] ?? '');
    const count = seen.get(anchor) ?? 0;
    seen.set(anchor, count + 1);
    anchors.add(count === 0 ? anchor : `${anchor}-${count}`);
  }
  return anchors;
}

/** Every relative link of the documents that leads to no file, or to no heading of it. */
export function linkProblems(root: string): string[] {
  const problems: string[] = [];
  for (const file of documents(root)) {
    const full = path.join(root, file);
    for (const match of prose(readFileSync(full, 'utf8')).matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [linked = '', anchor] = target.split('#', 2);
      const destination = linked === '' ? full : path.resolve(path.dirname(full), linked);
      if (!existsSync(destination)) problems.push(`${file}: ${target}: no such file`);
      else if (anchor !== undefined && !anchorsOf(destination).has(anchor)) problems.push(`${file}: ${target}: no such heading`);
    }
  }
  return problems;
}

describe('the links of the documents', () => {
  it('lead to files and headings that exist', () => {
    expect(linkProblems(PACKAGE_ROOT)).toEqual([]);
  });

  it("take GitHub's anchors", () => {
    expect(headingAnchor("Reading a machine's logs")).toBe('reading-a-machines-logs');
    expect(headingAnchor('4. Publication: config/, the manifest, last_change_date')).toBe('4-publication-config-the-manifest-last_change_date');
    expect(headingAnchor('`bento init`')).toBe('bento-init');
  });

  it('name a missing file, a missing heading, and skip code', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bento-doc-links-'));
    try {
      mkdirSync(path.join(root, 'docs'));
      writeFileSync(path.join(root, 'docs', 'a.md'), '# A page\n\n## Some part\n\n[top](../README.md#the-top) [gone](gone.md)\n');
      writeFileSync(
        path.join(root, 'README.md'),
        '# The top\n\n[part](docs/a.md#some-part) [bad](docs/a.md#other-part) [self](#the-top) [web](https://example.org/x)\n\n`[code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n',
      );
      expect(linkProblems(root)).toEqual(['README.md: docs/a.md#other-part: no such heading', 'docs/a.md: gone.md: no such file']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
