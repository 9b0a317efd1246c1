/**
 * `bento completion bash|zsh`: the shell completion script, derived from the
 * commander program itself so it never falls behind the commands: words for
 * the command, then for its options and fixed arguments. zsh uses the bash
 * script through bashcompinit.
 */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { shQuote } from '../util/quote.js';
import { writeText } from '../util/write-stream.js';
import { defineCommand, type CommandIO } from './io.js';

export interface CompletionOptions {
  /** bash or zsh; anything else is refused. */
  shell: string;
  /** The program to complete. */
  program: Command;
}

export async function completionCommand(options: CompletionOptions, io: CommandIO): Promise<number> {
  const { shell } = options;
  if (shell !== 'bash' && shell !== 'zsh') throw new UserError(`no completion for ${JSON.stringify(shell)}: use bash or zsh`);
  await writeText(io.stdout, renderCompletion(options.program, shell));
  return 0;
}

/** Fixed words a command's argument can take. */
const ARGUMENT_WORDS: Record<string, string[]> = {
  build: ['dry-build', 'dry-run', 'build', 'test', 'switch'],
  completion: ['bash', 'zsh'],
  rollout: ['status', 'advance', 'resume', 'abort'],
};

export function renderCompletion(program: Command, shell: 'bash' | 'zsh'): string {
  const globalWords = program.options.flatMap((option) => [option.short, option.long]).filter(Boolean) as string[];
  const commands = program.commands.map((command) => command.name());
  const cases = program.commands
    .map((command) => {
      const words = [...(ARGUMENT_WORDS[command.name()] ?? []), ...command.options.flatMap((option) => [option.long].filter(Boolean) as string[]), '--help'];
      return `\t${command.name()}) words=${shQuote(words.join(' '))} ;;`;
    })
    .join('\n');
  const bash = `# bento ${shell} completion: eval "$(bento completion ${shell})"
_bento() {
\tlocal cur words index
\tcur=\${COMP_WORDS[COMP_CWORD]}
\tindex=1
\twhile [ "$index" -lt "$COMP_CWORD" ]; do
\t\tcase \${COMP_WORDS[index]} in
\t\t-d | --dir) index=$((index + 2)) ;;
\t\t-*) index=$((index + 1)) ;;
\t\t*) break ;;
\t\tesac
\tdone
\tif [ "$index" -ge "$COMP_CWORD" ]; then
\t\tCOMPREPLY=($(compgen -W ${shQuote([...commands, ...globalWords, '--help'].join(' '))} -- "$cur"))
\t\treturn
\tfi
\tcase \${COMP_WORDS[index]} in
${cases}
\t*) words='' ;;
\tesac
\tCOMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _bento bento
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

export const command = defineCommand<Record<string, never>, CompletionOptions>({
  define(command) {
    command.argument('<shell>', 'bash or zsh');
  },
  options: ({ args }, world) => ({ shell: args[0] as string, program: world.program }),
  run: completionCommand,
  describesProgram: true,
});
