import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import noImportCycle from './scripts/lint/no-import-cycle.js';

/**
 * The house (CONTRIBUTING.md, "The code map"): data flows one way, config → fleet → render →
 * builds → chroot → status → rollout → notify (staged rollouts publish with
 * chroot/ and read logs with status/; alerts read both), with nix/ (every Nix call), protocol/ (the wire
 * formats' parsers, docs/protocol.md), the files at the top of src/ (exec,
 * errors, log, paths, progress) and util/ under all of them.
 * A stage imports only earlier stages and what is under them; no stage
 * imports commands/ or the CLI; cli.ts loads the commands lazily and imports
 * nothing else of bento but its own helpers. No module of src/ is part of an
 * import cycle, type imports included (scripts/lint/no-import-cycle.js).
 * test/lint-layers.test.ts plants violations to prove these rules fail.
 */
const STAGES = ['config', 'fleet', 'render', 'builds', 'chroot', 'status', 'rollout', 'notify'];
const TOP = ['cli', 'main'];

/** A restriction: relative imports into these directories (from a directory of src/) or of these top files. */
function forbid({ dirs = [], files = [], fromTop = false, message }) {
  const prefix = fromTop ? '\\./' : '\\.\\./';
  const patterns = [];
  if (dirs.length > 0) patterns.push({ regex: `^${prefix}(${dirs.join('|')})/`, message });
  if (files.length > 0) patterns.push({ regex: `^${prefix}(${files.join('|')})\\.js$`, message });
  return patterns;
}

const layerRules = [
  // Each stage: no later stage, no command, no CLI.
  ...STAGES.map((stage, index) => ({
    files: [`src/${stage}/**/*.ts`],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: forbid({
            dirs: [...STAGES.slice(index + 1), 'commands'],
            files: TOP,
            message: `${stage}/ is a stage: it may import earlier stages (${STAGES.slice(0, index).join(', ') || 'none'}), nix/, util/ and the top files of src/, never a later stage, commands/ or the CLI (see the code map in CONTRIBUTING.md).`,
          }),
        },
      ],
    },
  })),
  {
    files: ['src/nix/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: forbid({ dirs: [...STAGES, 'commands'], files: TOP, message: 'nix/ is under every stage: it may import only util/ and the top files of src/ (exec, errors, log, …).' }) },
      ],
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: forbid({ dirs: [...STAGES, 'nix', 'commands'], files: TOP, message: 'protocol/ is under every stage (each wire format read and written the same way by all of them): it may import only util/ and the top files of src/.' }) },
      ],
    },
  },
  {
    files: ['src/util/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./', message: 'util/ is the bottom of the house: its modules import only each other (and Node).' }] },
      ],
    },
  },
  {
    files: ['src/*.ts'],
    ignores: ['src/cli.ts', 'src/main.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: forbid({
            dirs: [...STAGES, 'nix', 'commands'],
            files: TOP,
            fromTop: true,
            message: 'The top files of src/ (exec, errors, log, paths, progress) are under every stage: they may import only util/ and each other.',
          }),
        },
      ],
    },
  },
  {
    files: ['src/cli.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...forbid({
              dirs: [...STAGES, 'nix'],
              files: ['main'],
              fromTop: true,
              message: 'cli.ts reaches the stages only through the commands: import from ./commands/ (types) and load the command when it runs.',
            }),
            {
              regex: '^\\./commands/',
              allowTypeImports: true,
              message: 'cli.ts loads each command when it runs (`await import`), so that starting one command does not load the others: import only types statically.',
            },
          ],
        },
      ],
    },
  },
  {
    // A dynamic import() would slip past the rules above: only the CLI loads modules lazily.
    // A package named by a literal is outside the layers: exec.ts loads execa on first use.
    files: ['src/**/*.ts'],
    ignores: ['src/cli.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "ImportExpression:not([source.type='Literal'])", message: 'Only cli.ts imports modules dynamically (the layer rules check static imports).' },
        { selector: 'ImportExpression[source.value=/^[./]/]', message: 'Only cli.ts imports modules dynamically (the layer rules check static imports).' },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { bento: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: { 'bento/no-import-cycle': 'error' },
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'generated/', 'example/', '.bento-test-tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', performance: 'readonly', Buffer: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  ...layerRules,
);
