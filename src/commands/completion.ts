/**
 * `bento completion bash|zsh|fish`: the shell completion script, derived
 * from the commander program itself so it never falls behind the commands:
 * words for the command, then for its options and fixed arguments, and the
 * fleet's system names where a command takes them (`--name`, and the names
 * `trigger` and `prune` take as arguments). zsh uses the bash script through
 * bashcompinit.
 *
 * The names are the directories of `<fleet>/generated/systems/` (the fleet
 * of --dir, else BENTO_DIR, else the current directory): what the last
 * `bento generate` or deploy found, read in a moment. The fleet's own list
 * would need Nix to evaluate every flake, far too slow for a key press.
 */
import type { Command, Option } from 'commander';
import { UserError } from '../errors.js';
import { shQuote } from '../util/quote.js';
import { writeText } from '../util/write-stream.js';
import { defineCommand, type CommandIO } from './io.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export interface CompletionOptions {
  /** bash, zsh or fish; anything else is refused. */
  shell: string;
  /** The program to complete. */
  program: Command;
}

export async function completionCommand(options: CompletionOptions, io: CommandIO): Promise<number> {
  const { shell } = options;
  if (!(SHELLS as readonly string[]).includes(shell)) throw new UserError(`no completion for ${JSON.stringify(shell)}: use bash, zsh or fish`);
  await writeText(io.stdout, renderCompletion(options.program, shell as Shell));
  return 0;
}

/** Fixed words a command's argument can take. */
const ARGUMENT_WORDS: Record<string, string[]> = {
  build: ['dry-build', 'dry-run', 'build', 'test', 'switch'],
  completion: [...SHELLS],
  rollout: ['status', 'advance', 'resume', 'abort'],
};

/** Where the fleet's system names are, below the fleet directory (render-fleet.ts writes generated/systems/<name>/). */
const SYSTEMS_DIR = 'generated/systems';

/** What completing one command needs to know. */
interface CommandWords {
  name: string;
  summary: string;
  /** Its fixed arguments, then its options (long forms), then --help. */
  words: string[];
  /** Its options that take a value (short and long forms): the word after them is that value. */
  valueOptions: string[];
  /** It has --name (-n), whose values are system names. */
  nameOption: boolean;
  /** Its arguments are system names (`[name...]`). */
  nameArguments: boolean;
  options: readonly Option[];
}

function describeCommands(program: Command): CommandWords[] {
  return program.commands.map((command) => ({
    name: command.name(),
    summary: command.description(),
    words: [...(ARGUMENT_WORDS[command.name()] ?? []), ...command.options.flatMap((option) => [option.long].filter(Boolean) as string[]), '--help'],
    valueOptions: command.options.filter(takesValue).flatMap((option) => [option.short, option.long].filter(Boolean) as string[]),
    nameOption: command.options.some((option) => option.long === '--name'),
    nameArguments: command.registeredArguments.some((argument) => argument.name() === 'name'),
    options: command.options,
  }));
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

export function renderCompletion(program: Command, shell: Shell): string {
  if (shell === 'fish') return renderFish(program);
  const bash = renderBash(program, shell);
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

function renderBash(program: Command, shell: 'bash' | 'zsh'): string {
  const globalWords = program.options.flatMap((option) => [option.short, option.long]).filter(Boolean) as string[];
  const commands = describeCommands(program);
  const cases = commands
    .map((command) => {
      const names = command.nameArguments ? 'arguments' : command.nameOption ? 'option' : '';
      return `\t${command.name}) words=${shQuote(command.words.join(' '))} values=${shQuote(command.valueOptions.join(' '))} names=${names} ;;`;
    })
    .join('\n');
  return `# bento ${shell} completion: eval "$(bento completion ${shell})"
# The fleet's system names: the directories bento generate wrote (${SYSTEMS_DIR}/).
_bento_systems() {
\tlocal path
\tfor path in "$1"/${SYSTEMS_DIR}/*/; do
\t\t[ -d "$path" ] || continue
\t\tpath=\${path%/}
\t\tprintf '%s\\n' "\${path##*/}"
\tdone
}
_bento() {
\tlocal cur prev words values names index dir in_names
\tcur=\${COMP_WORDS[COMP_CWORD]}
\tprev=\${COMP_WORDS[COMP_CWORD - 1]}
\tdir=\${BENTO_DIR:-.}
\tindex=1
\twhile [ "$index" -lt "$COMP_CWORD" ]; do
\t\tcase \${COMP_WORDS[index]} in
\t\t-d | --dir)
\t\t\tdir=\${COMP_WORDS[index + 1]}
\t\t\tindex=$((index + 2))
\t\t\t;;
\t\t--dir=*)
\t\t\tdir=\${COMP_WORDS[index]#--dir=}
\t\t\tindex=$((index + 1))
\t\t\t;;
\t\t-*) index=$((index + 1)) ;;
\t\t*) break ;;
\t\tesac
\tdone
\tif [ "$index" -ge "$COMP_CWORD" ]; then
\t\tCOMPREPLY=($(compgen -W ${shQuote([...commands.map((command) => command.name), ...globalWords, '--help'].join(' '))} -- "$cur"))
\t\treturn
\tfi
\tcase \${COMP_WORDS[index]} in
${cases}
\t*) words='' values='' names='' ;;
\tesac
\t# The values of --name run until the next option; the value of another option is not a name.
\tin_names=''
\tfor ((index = index + 1; index < COMP_CWORD; index++)); do
\t\tcase \${COMP_WORDS[index]} in
\t\t-n | --name) in_names=yes ;;
\t\t-*) in_names='' ;;
\t\tesac
\tdone
\tcase $cur in
\t-*) ;;
\t*)
\t\tif [ "$names" = option ] && [ -n "$in_names" ]; then
\t\t\tCOMPREPLY=($(compgen -W "$(_bento_systems "$dir")" -- "$cur"))
\t\t\treturn
\t\tfi
\t\tcase " $values " in
\t\t*" $prev "*)
\t\t\tCOMPREPLY=()
\t\t\treturn
\t\t\t;;
\t\tesac
\t\tif [ "$names" = arguments ]; then
\t\t\tCOMPREPLY=($(compgen -W "$(_bento_systems "$dir") $words" -- "$cur"))
\t\t\treturn
\t\tfi
\t\t;;
\tesac
\tCOMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _bento bento
`;
}

/** A word for fish, in single quotes (fish's only escapes there are \\\\ and \\'). */
function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function renderFish(program: Command): string {
  const commands = describeCommands(program);
  const lines = [
    '# bento fish completion: bento completion fish | source',
    '# (or save it as ~/.config/fish/completions/bento.fish)',
    '',
    '# The fleet directory of the command line: --dir, else BENTO_DIR, else here.',
    'function __bento_fleet_dir',
    '    set -l tokens (commandline -opc)',
    '    for i in (seq (count $tokens))',
    '        switch $tokens[$i]',
    '            case -d --dir',
    '                if test $i -lt (count $tokens)',
    '                    echo $tokens[(math $i + 1)]',
    '                    return',
    '                end',
    '            case "--dir=*"',
    "                string replace -- --dir= '' $tokens[$i]",
    '                return',
    '        end',
    '    end',
    '    if test -n "$BENTO_DIR"',
    '        echo $BENTO_DIR',
    '    else',
    '        echo .',
    '    end',
    'end',
    '',
    `# The fleet's system names: the directories bento generate wrote (${SYSTEMS_DIR}/).`,
    'function __bento_systems',
    `    for path in (__bento_fleet_dir)/${SYSTEMS_DIR}/*/`,
    '        basename $path',
    '    end',
    'end',
    '',
    'complete -c bento -f',
    ...program.options.map((option) => fishOption('__fish_use_subcommand', option, option.long === '--dir' ? "-x -a '(__fish_complete_directories)'" : '')),
    ...commands.map((command) => `complete -c bento -n __fish_use_subcommand -a ${command.name} -d ${fishQuote(command.summary)}`),
  ];
  for (const command of commands) {
    const when = fishQuote(`__fish_seen_subcommand_from ${command.name}`);
    const fixed = ARGUMENT_WORDS[command.name];
    if (fixed) lines.push(`complete -c bento -n ${when} -a ${fishQuote(fixed.join(' '))}`);
    if (command.nameArguments) lines.push(`complete -c bento -n ${when} -a '(__bento_systems)'`);
    for (const option of command.options) lines.push(fishOption(when, option, option.long === '--name' ? "-x -a '(__bento_systems)'" : ''));
  }
  return `${lines.join('\n')}\n`;
}

/** `complete` for one option: its short and long forms, `-r` when it takes a value (or `values`), its description. */
function fishOption(condition: string, option: Option, values: string): string {
  const forms = [option.short ? `-s ${option.short.slice(1)}` : '', option.long ? `-l ${option.long.slice(2)}` : ''].filter(Boolean).join(' ');
  const value = values || (takesValue(option) ? '-r -F' : '');
  return ['complete -c bento -n', condition, forms, value, '-d', fishQuote(option.description)].filter(Boolean).join(' ');
}

export const command = defineCommand<Record<string, never>, CompletionOptions>({
  define(command) {
    command.argument('<shell>', 'bash, zsh or fish');
  },
  options: ({ args }, world) => ({ shell: args[0] as string, program: world.program }),
  run: completionCommand,
  describesProgram: true,
});
