/** The question before build test|switch: answered, or its input at an end. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { askQuestion } from '../../src/util/ask.js';

function streams() {
  const output = new PassThrough();
  let said = '';
  output.setEncoding('utf8').on('data', (chunk: string) => (said += chunk));
  return { input: new PassThrough(), output, said: () => said };
}

describe('askQuestion', () => {
  it('resolves to the line typed, and says the question', async () => {
    const { input, output, said } = streams();
    const answer = askQuestion('apply? ', input, output);
    input.write('yes\n');
    expect(await answer).toBe('yes');
    expect(said()).toBe('apply? ');
  });

  it("resolves to '' when the input ends before a line (</dev/null, <&-, an empty pipe), instead of never settling", async () => {
    const { input, output } = streams();
    const answer = askQuestion('apply? ', input, output);
    input.end();
    // Never settled (as it was), this test runs into its timeout.
    expect(await answer).toBe('');
  });
});
