/** The client library: its sources joined in order, without their shellcheck directives, under a header; its digest. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT_LIBRARY_SOURCES, clientLibraryDigest, clientLibrarySource, renderClientLibrary } from '../../src/render/client-library.js';
import { LOG_PROTOCOL_VERSION } from '../../src/protocol/log-header.js';
import { sha256 } from '../../src/util/hash.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-client-library-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
for (const name of CLIENT_LIBRARY_SOURCES) {
  writeFileSync(clientLibrarySource(name, dir), `# shellcheck shell=sh\n# the ${name} source\n${name.replace(/-/g, '_')}() { :; }\n  # shellcheck disable=SC2034 (indented: kept)\n`);
}

describe('renderClientLibrary', () => {
  it('joins every source in the order of CLIENT_LIBRARY_SOURCES, after the header and the log protocol version', () => {
    const text = renderClientLibrary(dir);
    expect(text.startsWith('# shellcheck shell=sh disable=SC2034\n# ')).toBe(true);
    expect(text).toContain(`\nBENTO_LOG_PROTOCOL=${LOG_PROTOCOL_VERSION}\n`);
    const positions = CLIENT_LIBRARY_SOURCES.map((name) => text.indexOf(`# the ${name} source\n`));
    expect(positions.every((position) => position > text.indexOf('BENTO_LOG_PROTOCOL='))).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("drops each source's own shellcheck directives, which speak of that file alone", () => {
    const text = renderClientLibrary(dir);
    expect(text.split('\n').filter((line) => line.startsWith('# shellcheck '))).toEqual(['# shellcheck shell=sh disable=SC2034']);
    expect(text).toContain('  # shellcheck disable=SC2034 (indented: kept)');
  });

  it('names the library by the SHA-256 of that text', () => {
    expect(clientLibraryDigest(dir)).toBe(sha256(renderClientLibrary(dir)));
    expect(clientLibraryDigest()).toBe(sha256(renderClientLibrary()));
    expect(clientLibraryDigest()).not.toBe(clientLibraryDigest(dir));
  });
});
