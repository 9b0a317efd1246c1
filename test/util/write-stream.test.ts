/** Writing to a stream and waiting until the text is handed over. */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeText } from '../../src/util/write-stream.js';

describe('writeText', () => {
  it('resolves once the stream has taken the text', async () => {
    const taken: string[] = [];
    const slow = new Writable({
      write(chunk: Buffer, _encoding, done) {
        setImmediate(() => {
          taken.push(chunk.toString());
          done();
        });
      },
    });
    await writeText(slow, 'one\n');
    expect(taken).toEqual(['one\n']);
  });

  it('resolves, not rejects, when the reader went away', async () => {
    const stream = new PassThrough();
    stream.on('error', () => {});
    stream.destroy();
    await expect(writeText(stream, 'lost\n')).resolves.toBeUndefined();
  });
});
