/**
 * The keys of config.sh described for people, from the schema: the list in
 * `bento --help`, the entries of `bento init`'s config.sh and the reference
 * page docs/config.md (`npm run docs:config` writes it). Pure: each returns
 * text or data, and test/config/schema.test.ts compares them with the schema.
 */
import { configKeys, type KeySpec } from './schema.js';

type Described = { name: string; spec: KeySpec };

/** One line per key for `bento --help`: `  KEY  doc (default)`. */
export function configKeysHelp(keys: readonly Described[] = configKeys()): string {
  const width = Math.max(...keys.map(({ name }) => name.length));
  return keys.map(({ name, spec }) => `  ${name.padEnd(width)}  ${helpLine(spec)}`).join('\n');
}

/** The text after a key's name in `bento --help`. */
export function helpLine(spec: KeySpec): string {
  return `${spec.doc} (${spec.shown})`;
}

export interface InitEntry {
  name: string;
  /** The comment above the key: its doc line, then its details. */
  comment: string;
  value: string;
  /** Written as `KEY=value` (true) or `#KEY=value`. */
  set: boolean;
}

/** The entries of `bento init`'s config.sh (templates/init/config.sh.hbs), in schema order. */
export function initEntries(keys: readonly Described[] = configKeys()): InitEntry[] {
  return keys.map(({ name, spec }) => ({ name, comment: initComment(spec), value: spec.example, set: Boolean(spec.initSet) }));
}

/** The comment bento init writes above a key, wrapped at 76 columns. */
export function initComment(spec: KeySpec): string {
  const sentence = `${spec.doc} (${spec.shown}).`;
  return wrap([sentence, spec.details].filter(Boolean).join(' '), 76);
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** docs/config.md: every key with its type, default, doc line, details and example. */
export function configReferencePage(keys: readonly Described[] = configKeys()): string {
  const sections = keys.map(({ name, spec }) =>
    [
      `## ${name}`,
      '',
      `${spec.doc}.${spec.details ? ` ${spec.details}` : ''}`,
      '',
      `- type: ${spec.type}`,
      `- default: ${spec.shown}`,
      `- example: \`${name}=${spec.example.includes(' ') ? `"${spec.example}"` : spec.example}\``,
      '',
    ].join('\n'),
  );
  return [
    '# config.sh keys',
    '',
    '<!-- generated from src/config/schema.ts by `npm run docs:config`; do not edit -->',
    '',
    'config.sh holds `KEY=VALUE` lines, comments and blank lines. bento **parses it and never executes it**:',
    '`export KEY=…`, single and double quotes and comments are understood; command substitution, backticks,',
    'variables, `;`, pipes, redirections or unquoted spaces are refused with `config.sh:LINE: what is wrong`.',
    'Unknown keys get a warning. `bento init` writes one with every key below, `bento --help` lists them.',
    '',
    '| key | default | what it does |',
    '| --- | --- | --- |',
    ...keys.map(({ name, spec }) => `| [${name}](#${name.toLowerCase()}) | ${spec.shown.replace(/\|/g, '\\|')} | ${spec.doc.replace(/\|/g, '\\|')} |`),
    '',
    ...sections,
  ].join('\n');
}
