/**
 * Asking the user a question on the terminal (bento build test|switch
 * before it applies a system).
 */
import type { Readable, Writable } from 'node:stream';

/**
 * Asks `question` on `output` and resolves to the line read from `input`;
 * '' when there is none. An input that ends first (`</dev/null`, `<&-`,
 * which node opens as /dev/null, an empty pipe, cron) closes the reader
 * without an answer, and readline's question then never settles: bento
 * exited with status 13 (an unsettled top-level await) and no word.
 */
export async function askQuestion(question: string, input: Readable = process.stdin, output: Writable = process.stderr): Promise<string> {
  // Loaded when a question is asked: cli.ts imports this module for every command, and only bento build asks.
  const { createInterface } = await import('node:readline/promises');
  const reader = createInterface({ input, output });
  const closed = new Promise<string>((resolve) => reader.once('close', () => resolve('')));
  try {
    return await Promise.race([reader.question(question), closed]);
  } catch {
    return '';
  } finally {
    reader.close();
  }
}
