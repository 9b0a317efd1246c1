/**
 * Delivering an alert: NOTIFY_COMMAND run by /bin/sh with the JSON on its
 * stdin, NOTIFY_URL sent the same JSON in an HTTP POST. Each either
 * delivers (exit 0, a 2xx answer) or fails with a message that names the
 * hook; a URL is named by its origin alone, since its path or query often
 * holds a token (ntfy topics, chat webhooks) that must stay out of logs.
 */
import { run, tail } from '../exec.js';

export type HookKind = 'command' | 'url';

export interface Hook {
  kind: HookKind;
  /** The command line, or the URL. */
  target: string;
}

/** The hooks config.sh sets (NOTIFY_COMMAND, NOTIFY_URL), in the order they are run. */
export function hooksOf(config: { notifyCommand: string; notifyUrl: string }): Hook[] {
  const hooks: Hook[] = [];
  if (config.notifyCommand !== '') hooks.push({ kind: 'command', target: config.notifyCommand });
  if (config.notifyUrl !== '') hooks.push({ kind: 'url', target: config.notifyUrl });
  return hooks;
}

/** How long a hook may take before it counts as failed. */
const COMMAND_TIMEOUT_MS = 60_000;
const POST_TIMEOUT_MS = 30_000;

/** A URL as messages may show it: scheme, host and port, the rest elided. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}/…`;
  } catch {
    return '(an invalid URL)';
  }
}

/** What the hook is called in messages. */
export function describeHook(hook: Hook): string {
  return hook.kind === 'command' ? 'NOTIFY_COMMAND' : `NOTIFY_URL (${redactUrl(hook.target)})`;
}

/** Delivers `body` (JSON text); throws an Error naming the hook when it did not arrive. */
export async function deliver(hook: Hook, body: string): Promise<void> {
  if (hook.kind === 'command') {
    const result = await run('/bin/sh', ['-c', hook.target], { input: body, allowFailure: true, timeoutMs: COMMAND_TIMEOUT_MS });
    if (result.exitCode !== 0) {
      const output = tail(result.stderr || result.stdout, 5);
      throw new Error(`${describeHook(hook)} exited with status ${result.exitCode}${output ? `: ${output}` : ''}`);
    }
    return;
  }
  let response: Response;
  try {
    response = await fetch(hook.target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    // fetch's messages can quote the URL: it is cut out of what is shown.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new Error(`${describeHook(hook)}: the POST failed (${reason.split(hook.target).join(redactUrl(hook.target))})`);
  }
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`${describeHook(hook)} answered HTTP ${response.status}`);
}
