/** Delivering an alert to NOTIFY_COMMAND (sh, JSON on stdin) or NOTIFY_URL (a POST), and naming a URL by its origin alone. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliver, describeHook, hooksOf, redactUrl } from '../../src/notify/deliver.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-deliver-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hooksOf, redactUrl and describeHook', () => {
  it('take the hooks config.sh sets, command first', () => {
    expect(hooksOf({ notifyCommand: '', notifyUrl: '' })).toEqual([]);
    expect(hooksOf({ notifyCommand: 'logger', notifyUrl: 'https://h/t' })).toEqual([{ kind: 'command', target: 'logger' }, { kind: 'url', target: 'https://h/t' }]);
    expect(hooksOf({ notifyCommand: '', notifyUrl: 'https://h/t' })).toEqual([{ kind: 'url', target: 'https://h/t' }]);
  });

  it('name a URL by its scheme, host and port alone', () => {
    expect(redactUrl('https://user:pw@ntfy.example.org:8443/s3cret?token=x')).toBe('https://ntfy.example.org:8443/…');
    expect(redactUrl('not a url')).toBe('(an invalid URL)');
    expect(describeHook({ kind: 'url', target: 'http://h/s3cret' })).toBe('NOTIFY_URL (http://h/…)');
    expect(describeHook({ kind: 'command', target: 'echo s3cret' })).toBe('NOTIFY_COMMAND');
  });
});

describe('deliver to a command', () => {
  it('runs it by /bin/sh with the JSON on its stdin', async () => {
    const out = path.join(dir, 'received.json');
    await deliver({ kind: 'command', target: `cat > '${out}'` }, '{"a":1}');
    expect(readFileSync(out, 'utf8')).toBe('{"a":1}');
  });

  it('fails, naming the hook, its status and its output, when it exits non-zero', async () => {
    await expect(deliver({ kind: 'command', target: 'echo no route >&2; exit 3' }, '{}')).rejects.toThrow('NOTIFY_COMMAND exited with status 3: no route');
    await expect(deliver({ kind: 'command', target: 'exit 1' }, '{}')).rejects.toThrow(/^NOTIFY_COMMAND exited with status 1$/);
  });
});

describe('deliver to a URL', () => {
  const received: { method?: string; type?: string; body: string }[] = [];
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ method: request.method, type: request.headers['content-type'], body });
        if (request.url?.startsWith('/fail')) response.writeHead(500);
        else if (request.url?.startsWith('/moved')) response.writeHead(302, { location: '/ok' });
        else response.writeHead(204);
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('POSTs the JSON, and a 2xx answer delivers it', async () => {
    await deliver({ kind: 'url', target: `${base}/ok?token=s3cret` }, '{"b":2}');
    expect(received.at(-1)).toEqual({ method: 'POST', type: 'application/json', body: '{"b":2}' });
  });

  it('fails on another answer, or a redirect, without naming the path or query', async () => {
    const failed = deliver({ kind: 'url', target: `${base}/fail/s3cret` }, '{}');
    await expect(failed).rejects.toThrow(`NOTIFY_URL (${base}/…) answered HTTP 500`);
    const moved = await deliver({ kind: 'url', target: `${base}/moved/s3cret` }, '{}').catch((error: Error) => error);
    expect(moved).toBeInstanceOf(Error);
    expect((moved as Error).message).toMatch(/^NOTIFY_URL \(http:\/\/127\.0\.0\.1:\d+\/…\): the POST failed/);
    expect((moved as Error).message).not.toContain('s3cret');
  });
});
