/** Writing to a stream and waiting until the text is handed over. */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { guardOutput, outputFailure, runWithGuardedOutput, writeText } from '../../src/util/write-stream.js';

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
    // As runCli guards the process's stdout: no listener of the test's own.
    guardOutput(stream);
    stream.destroy();
    await expect(writeText(stream, 'lost\n')).resolves.toBeUndefined();
  });
});

/** A stream whose every write fails with `code`, as a pipe without a reader (EPIPE) or a full disk (ENOSPC) does. */
function failing(code: string): Writable {
  return new Writable({
    write(_chunk: Buffer, _encoding, done) {
      done(Object.assign(new Error(`write ${code}`), { code }));
    },
  });
}

describe('guardOutput', () => {
  it('keeps a failed write from throwing, and remembers the first error', async () => {
    const stream = failing('EPIPE');
    const guard = guardOutput(stream);
    // Without the guard the 'error' event has no listener: node throws it.
    await writeText(stream, 'one\n');
    await writeText(stream, 'two\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(guard.error?.code).toBe('EPIPE');
    expect(outputFailure(guard, 'the output')).toBeUndefined();
  });

  it('says what failed when it is not a reader gone', async () => {
    const stream = failing('ENOSPC');
    const guard = guardOutput(stream);
    await writeText(stream, 'table\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(outputFailure(guard, 'the output')).toBe('the output could not be written: write ENOSPC');
  });

  it('nothing to say about an output written whole', async () => {
    const stream = new PassThrough();
    const guard = guardOutput(stream);
    await writeText(stream, 'whole\n');
    expect(guard.error).toBeUndefined();
    expect(outputFailure(guard, 'the output')).toBeUndefined();
  });

  it('watches a stream once, however often it is asked', () => {
    const stream = new PassThrough();
    const first = guardOutput(stream);
    expect(guardOutput(stream)).toBe(first);
    expect(stream.listenerCount('error')).toBe(1);
  });
});

describe('runWithGuardedOutput', () => {
  it("keeps the run's exit status when the output's reader went away", async () => {
    const stdout = failing('EPIPE');
    const stderr = new PassThrough();
    const said: string[] = [];
    stderr.on('data', (chunk: Buffer) => said.push(chunk.toString()));
    await expect(runWithGuardedOutput(stdout, stderr, async () => (await writeText(stdout, 'table\n'), 2))).resolves.toBe(2);
    expect(said).toEqual([]);
  });

  it('makes any other failure of the output an error, said on stderr', async () => {
    const stdout = failing('ENOSPC');
    const stderr = new PassThrough();
    const said: string[] = [];
    stderr.on('data', (chunk: Buffer) => said.push(chunk.toString()));
    await expect(runWithGuardedOutput(stdout, stderr, async () => (await writeText(stdout, 'table\n'), 0))).resolves.toBe(1);
    expect(said.join('')).toBe('bento: error: the output could not be written: write ENOSPC\n');
  });

  it('a failure of the messages alone makes the exit status at least 1', async () => {
    const stderr = failing('EIO');
    await expect(runWithGuardedOutput(new PassThrough(), stderr, async () => (await writeText(stderr, 'warning\n'), 0))).resolves.toBe(1);
  });
});
