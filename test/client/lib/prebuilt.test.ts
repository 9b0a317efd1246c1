/**
 * The parsers of templates/client/lib/prebuilt.sh on their own (shell tier:
 * sourced, no root): the store path check and the narinfo splitter, which
 * read what the server published before anything is downloaded or imported
 * (docs/protocol.md §11).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

const HASH_A = '0123456789abcdfghijklmnpqrsvwxyz';
const HASH_B = 'zyxwvsrqpnmlkjihgfdcba9876543210';
const PATH_A = `/nix/store/${HASH_A}-nixos-system-pi-24.05`;
const PATH_B = `/nix/store/${HASH_B}-glibc-2.39`;

function narinfo(storePath: string, url: string, size: string, extra = ''): string {
  return `StorePath: ${storePath}\nURL: ${url}\nCompression: none\nFileSize: ${size}\nNarHash: sha256:x\n${extra}`;
}

/** split_narinfos on `bundle`: its status, NARINFO_PROBLEM and what it wrote. */
function split(bundle: string) {
  const dir = tempDir('bento-narinfos-', cleanups);
  writeFileSync(path.join(dir, 'narinfos'), bundle);
  const run = runSourced(['server-values', 'prebuilt'], `split_narinfos ${shellQuote(dir)}; status=$?; printf '%s\\n' "$NARINFO_PROBLEM"; exit $status`);
  const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
  return { run, problem: run.stdout.trim(), dir, read, files: () => readdirSync(dir).sort() };
}

describe('is_store_path', () => {
  it('takes /nix/store/<32 characters of Nix base32>-<name> and nothing else', () => {
    const values = [PATH_A, PATH_B, `/nix/store/${HASH_A}`, `/nix/store/${HASH_A}-`, `/nix/store/${HASH_A.replace('0', 'e')}-x`, `/nix/store/${HASH_A}-a/b`, `/nix/store/${HASH_A}-a b`, `/tmp/${HASH_A}-x`, `/nix/store/${HASH_A}x-y`];
    const script = values.map((value) => `if is_store_path ${shellQuote(value)}; then echo yes; else echo no; fi`).join('\n');
    expect(runSourced(['server-values', 'prebuilt'], script).stdout.trim().split('\n')).toEqual(['yes', 'yes', 'no', 'no', 'no', 'no', 'no', 'no', 'no']);
  });
});

describe('split_narinfos', () => {
  it('writes one <hash>.narinfo per narinfo as Nix reads a file:// cache, lists the store paths and indexes each NAR', () => {
    const first = narinfo(PATH_A, 'nar/aaa.nar', '1234', `References: ${HASH_B}-glibc-2.39\n`);
    const second = narinfo(PATH_B, 'nar/bbb.nar.xz', '99');
    // The last narinfo without its final newline: read all the same.
    const { run, read, files } = split(`${first}\n${second.trimEnd()}`);
    expect(run.status).toBe(0);
    expect(files()).toEqual([`${HASH_A}.narinfo`, `${HASH_B}.narinfo`, 'index', 'narinfos', 'paths'].sort());
    expect(read(`${HASH_A}.narinfo`)).toBe(first);
    expect(read(`${HASH_B}.narinfo`)).toBe(second);
    expect(read('paths')).toBe(`${PATH_A}\n${PATH_B}\n`);
    expect(read('index')).toBe(`@${HASH_A} nar/aaa.nar 1234\n@${HASH_B} nar/bbb.nar.xz 99\n`);
  });

  it('refuses a line before the first StorePath', () => {
    const { run, problem } = split(`URL: nar/x.nar\n${narinfo(PATH_A, 'nar/a.nar', '1')}`);
    expect(run.status).toBe(1);
    expect(problem).toBe('a line before the first StorePath: URL: nar/x.nar');
  });

  it('refuses a StorePath that is not a store path, shown safely', () => {
    const { run, problem } = split(narinfo('/etc/passwd\u001b[2J', 'nar/a.nar', '1'));
    expect(run.status).toBe(1);
    expect(problem).toBe('StorePath /etc/passwd?[2J is not a store path');
  });

  it('refuses a NAR outside nar/ or with a path in its name', () => {
    for (const url of ['../secret', 'nar/../x', 'nar/a/b.nar', 'nar/.hidden', 'nar/', 'x.nar', 'nar/A.nar']) {
      const { run, problem } = split(narinfo(PATH_A, url, '1'));
      expect(run.status, url).toBe(1);
      expect(problem, url).toContain(`has URL '${url}', not nar/<file>`);
    }
  });

  it('refuses a FileSize the shell cannot add up safely: not digits, a leading zero, over 15 digits, missing', () => {
    for (const size of ['-1', '012', '1e9', '1000000000000000', '']) {
      const { run, problem } = split(narinfo(PATH_A, 'nar/a.nar', size));
      expect(run.status, size).toBe(1);
      expect(problem, size).toContain(`has FileSize '${size}': not a number of at most 15 digits without a leading zero`);
    }
    const { run, problem } = split(`StorePath: ${PATH_A}\nURL: nar/a.nar\n`);
    expect(run.status).toBe(1);
    expect(problem).toContain("has FileSize ''");
  });
});

describe('downloaded_setting', () => {
  /** downloaded_setting NAME DEFAULT on a downloaded update.sh of `text` (none when undefined). */
  function setting(text: string | undefined, name: string, fallback: string): string {
    const state = tempDir('bento-setting-', cleanups);
    if (text !== undefined) {
      mkdirSync(path.join(state, 'incoming'));
      writeFileSync(path.join(state, 'incoming', 'update.sh'), text);
    }
    return runSourced(['fetch'], `STATE_DIR=${shellQuote(state)}; downloaded_setting ${name} ${shellQuote(fallback)}`).stdout;
  }

  it('reads a bare or single-quoted value, the last line of that name winning', () => {
    expect(setting('BENTO_PREBUILT=1\n', 'BENTO_PREBUILT', '0')).toBe('1\n');
    expect(setting("BENTO_CACHE_KEY='k:abc='\n", 'BENTO_CACHE_KEY', '')).toBe('k:abc=\n');
    expect(setting('BENTO_PREBUILT=0\nBENTO_PREBUILT=1\n', 'BENTO_PREBUILT', '0')).toBe('1\n');
  });

  it('falls back to this script\'s value when the download has none, or no update.sh', () => {
    expect(setting('BENTO_NAME=pi\n', 'BENTO_PREBUILT', '0')).toBe('0\n');
    expect(setting(undefined, 'BENTO_PREBUILT', '1')).toBe('1\n');
    // A name is matched whole at the start of a line.
    expect(setting('# BENTO_PREBUILT=1\nXBENTO_PREBUILT=1\n', 'BENTO_PREBUILT', '0')).toBe('0\n');
  });
});
