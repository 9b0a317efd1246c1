/**
 * Typed errors. The CLI is the only place that turns them into messages and
 * exit codes: a UserError is the user's to fix (bad input, wrong
 * environment), a ToolError is an external command that failed, and anything
 * else is a bug in bento.
 */

/** Something the user can fix: printed as is, exit status 1. */
export class UserError extends Error {
  constructor(
    message: string,
    /** What to do next, printed after the message. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Several independent problems found in one pass (all reported at once). */
export class UserErrors extends UserError {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UserErrors';
  }
}

/** An external command that failed: carries the command and its stderr tail. */
export class ToolError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderrTail: string,
    summary?: string,
  ) {
    super(summary ?? `command failed (exit ${exitCode ?? 'signal'}): ${command}`);
    this.name = 'ToolError';
  }
}

/** An external program is not installed. */
export class MissingToolError extends UserError {
  constructor(
    readonly tool: string,
    installHint: string,
  ) {
    super(`${tool} was not found on PATH`, installHint);
    this.name = 'MissingToolError';
  }
}

/** The errno code of a file-system error (ENOENT, EACCES, …), if it has one. */
export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** A short reason for a file-system error: its errno code, else its message. */
export function describeError(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.message : String(error));
}
