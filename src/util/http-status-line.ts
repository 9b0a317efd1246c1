/**
 * One HTTP/1.0 GET, as far as the status line of the answer: enough to know
 * that the server took the request. The connection is then closed; whatever
 * the server goes on sending is not read. Never throws: every failure
 * (refused, no route, name not found, timeout, closed early) is a reason.
 */
import net from 'node:net';

export type StatusLineResult = { ok: true; statusLine: string } | { ok: false; reason: string };

export interface StatusLineRequest {
  host: string;
  port: number;
  /** The whole exchange, connection included. */
  timeoutMs: number;
  path?: string;
  userAgent?: string;
}

/** The longest status line read: a server that sends more without a line end is not HTTP. */
const MAX_LINE = 1024;

export function requestStatusLine(request: StatusLineRequest): Promise<StatusLineResult> {
  return new Promise((resolve) => {
    let received = '';
    let settled = false;
    const socket = net.connect({ host: request.host, port: request.port });
    const finish = (result: StatusLineResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${request.timeoutMs / 1000} s` }), request.timeoutMs);
    socket.setNoDelay(true);
    socket.once('connect', () => {
      const host = request.host.includes(':') ? `[${request.host}]` : request.host;
      socket.write(`GET ${request.path ?? '/'} HTTP/1.0\r\nHost: ${host}:${request.port}\r\nUser-Agent: ${request.userAgent ?? 'bento'}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\n');
      if (end >= 0) finish({ ok: true, statusLine: received.slice(0, end).replace(/\r$/, '') });
      else if (received.length > MAX_LINE) finish({ ok: false, reason: 'the answer is not HTTP' });
    });
    socket.once('end', () => finish({ ok: false, reason: received === '' ? 'the connection was closed without an answer' : 'the answer is not HTTP' }));
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ ok: false, reason: error.code ?? error.message }));
  });
}
