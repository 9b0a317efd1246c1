/**
 * An eslint rule of the house: no import cycle in src/ (issue 22). A cycle
 * makes the order in which modules run depend on which one is imported
 * first, and hides a layer that is not one; the layer rules forbid upward
 * imports between directories, this one forbids a loop anywhere, inside a
 * directory too (the one status/ had: read-chroot → log-cache → states →
 * read-chroot).
 *
 * Every relative import counts, `import type` too (as `madge --circular`
 * counts it): a type that two modules need belongs below both. The file
 * being linted is read from the text eslint gives (so a test can plant a
 * cycle); the modules it reaches are read from disk, parsed by TypeScript's
 * import scanner (comments and strings are not imports), and remembered by
 * path, size and mtime for the rest of the run.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** Resolved path → { stamp, imports } of the modules read from disk. */
const cache = new Map();

/** The relative imports of `text` (the module `file`), resolved to files that exist; with their offsets. */
function importsOfText(file, text) {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const imports = [];
  for (const { fileName, pos, end } of importedFiles) {
    const target = resolveImport(file, fileName);
    if (target) imports.push({ target, pos, end });
  }
  return imports;
}

/** `./x.js` from `file` → the .ts file it names (NodeNext: imports name the emitted .js); undefined when none. */
function resolveImport(file, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(file), specifier);
  const candidates = base.endsWith('.js') ? [`${base.slice(0, -3)}.ts`, base] : [base, `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((candidate) => statSync(candidate, { throwIfNoEntry: false })?.isFile());
}

/** The resolved imports of the module `file` on disk. */
function importsOnDisk(file) {
  const stats = statSync(file, { throwIfNoEntry: false });
  if (!stats) return [];
  const stamp = `${stats.size}:${stats.mtimeMs}`;
  const known = cache.get(file);
  if (known?.stamp === stamp) return known.imports;
  const imports = importsOfText(file, readFileSync(file, 'utf8')).map((entry) => entry.target);
  cache.set(file, { stamp, imports });
  return imports;
}

/** A chain of imports from `start` back to `file` (start first), or undefined; depth first, each module visited once. */
function findWayBack(start, file) {
  const seen = new Set();
  const walk = (module, chain) => {
    if (module === file) return chain;
    if (seen.has(module)) return undefined;
    seen.add(module);
    for (const next of importsOnDisk(module)) {
      const found = walk(next, [...chain, next]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(start, [start]);
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'forbid import cycles between the modules of src/ (type imports included)' },
    schema: [],
    messages: { cycle: 'import cycle: {{chain}}. Move what both sides need into a module below them (see the code map in CONTRIBUTING.md).' },
  },
  create(context) {
    const file = context.physicalFilename ?? context.filename;
    return {
      'Program:exit'() {
        const sourceCode = context.sourceCode;
        const root = path.dirname(file);
        const name = (module) => path.relative(root, module) || path.basename(module);
        for (const { target, pos, end } of importsOfText(file, sourceCode.text)) {
          if (target === file) continue;
          const chain = findWayBack(target, file);
          if (!chain) continue;
          context.report({
            loc: { start: sourceCode.getLocFromIndex(pos), end: sourceCode.getLocFromIndex(end) },
            messageId: 'cycle',
            data: { chain: [path.basename(file), ...chain.map(name)].join(' → ') },
          });
        }
      },
    };
  },
};
