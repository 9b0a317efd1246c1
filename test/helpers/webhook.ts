/**
 * A webhook for the alert tests: a real HTTP server on 127.0.0.1 that
 * records every request it receives and answers as the test says.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string | undefined;
  url: string;
  type: string | undefined;
  body: string;
}

export interface Webhook {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Every request so far, in order. */
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** Starts the server; `answer` gives each request's status (and headers). */
export async function startWebhook(answer: (request: ReceivedRequest) => { status: number; headers?: Record<string, string> }): Promise<Webhook> {
  const received: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const entry = { method: request.method, url: request.url ?? '', type: request.headers['content-type'], body };
      received.push(entry);
      const { status, headers } = answer(entry);
      response.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
