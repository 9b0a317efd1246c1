/**
 * requestStatusLine (src/util/http-status-line.ts), against servers on
 * 127.0.0.1 that answer, hang up, babble or say nothing: it resolves with the
 * status line or a reason, never throws, and sends one HTTP/1.0 GET.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { requestStatusLine } from '../../src/util/http-status-line.js';

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  // A server closes once its connections are gone: those left open on purpose go first.
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A server on a free loopback port; `onConnection` plays its part. Resolves to the port. */
async function serve(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.push(socket);
    // The server's side, not the code under test: a real listener (the
    // machine's listen-update@ socket) outlives a client that resets.
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('requestStatusLine', () => {
  it('sends one GET and resolves with the status line, without its line end', async () => {
    let request = '';
    const port = await serve((socket) => {
      socket.on('data', (chunk) => {
        request += chunk.toString('latin1');
        if (request.endsWith('\r\n\r\n')) socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthe journal follows');
      });
    });
    const result = await requestStatusLine({ host: '127.0.0.1', port, timeoutMs: 5000, path: '/update', userAgent: 'bento-test' });
    expect(result).toEqual({ ok: true, statusLine: 'HTTP/1.0 200 OK' });
    expect(request).toBe(`GET /update HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: bento-test\r\n\r\n`);
  });

  it('names a refused connection by its code', async () => {
    const port = await serve(() => {});
    await new Promise((resolve) => servers.pop()?.close(resolve));
    expect(await requestStatusLine({ host: '127.0.0.1', port, timeoutMs: 5000 })).toEqual({ ok: false, reason: 'ECONNREFUSED' });
  });

  it('tells a hang-up without an answer from an answer that is not HTTP', async () => {
    const silent = await serve((socket) => socket.end());
    expect(await requestStatusLine({ host: '127.0.0.1', port: silent, timeoutMs: 5000 })).toEqual({ ok: false, reason: 'the connection was closed without an answer' });
    const short = await serve((socket) => socket.end('SSH-2.0'));
    expect(await requestStatusLine({ host: '127.0.0.1', port: short, timeoutMs: 5000 })).toEqual({ ok: false, reason: 'the answer is not HTTP' });
    const endless = await serve((socket) => socket.write('x'.repeat(2000)));
    expect(await requestStatusLine({ host: '127.0.0.1', port: endless, timeoutMs: 5000 })).toEqual({ ok: false, reason: 'the answer is not HTTP' });
  });

  it('gives up after timeoutMs when the server says nothing', async () => {
    const port = await serve(() => {});
    expect(await requestStatusLine({ host: '127.0.0.1', port, timeoutMs: 300 })).toEqual({ ok: false, reason: 'no answer within 0.3 s' });
  });
});
