/** Delivering an alert to NOTIFY_COMMAND (sh, JSON on stdin) or NOTIFY_URL (a POST), and naming a URL by its origin alone. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliver, describeHook, hooksOf, redactUrl } from '../../src/notify/deliver.js';
import { startWebhook, type Webhook } from '../helpers/webhook.js';

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
  let webhook: Webhook;
  let base: string;
  beforeAll(async () => {
    webhook = await startWebhook((request) => {
      if (request.url.startsWith('/fail')) return { status: 500 };
      if (request.url.startsWith('/moved')) return { status: 302, headers: { location: '/ok' } };
      return { status: 204 };
    });
    base = webhook.base;
  });
  afterAll(() => webhook.close());

  it('POSTs the JSON, and a 2xx answer delivers it', async () => {
    await deliver({ kind: 'url', target: `${base}/ok?token=s3cret` }, '{"b":2}');
    expect(webhook.received.at(-1)).toEqual({ method: 'POST', url: '/ok?token=s3cret', type: 'application/json', body: '{"b":2}' });
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
