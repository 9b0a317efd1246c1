// The executable as a split bundle, after tsc (npm run build): dist/main.js
// holds the CLI, and each module it imports on demand (a command, execa,
// Handlebars…) is a chunk of dist/ loaded when first imported. One file per
// chunk instead of one per module saves most of what a command spends
// loading its modules; a single-file bundle would load every command's code
// on every run (bench/README.md). The chunks sit in dist/ itself, where
// paths.ts finds the package root one level up, as from dist/paths.js; the
// rest of tsc's dist/ stays (the log reader's worker thread runs
// dist/status/read-logs.js, and tests import the modules built).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
// Chunks of an earlier build: their names are hashes of their content.
for (const entry of readdirSync(dist)) if (/^chunk-[A-Z0-9]+\.js$/.test(entry)) rmSync(path.join(dist, entry));

await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/main.ts' },
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  allowOverwrite: true,
  logLevel: 'warning',
  // The CommonJS packages (Handlebars, commander) require Node's modules: an ES module has no `require` of its own.
  banner: { js: "import { createRequire as bentoCreateRequire } from 'node:module'; const require = bentoCreateRequire(import.meta.url);" },
});
