// A webhook for the e2e suites: an HTTP server on 127.0.0.1 that appends
// the body of every request it receives, one line each, to FILE, and
// answers 200. It writes its port to PORT_FILE once it listens.
// Usage: node webhook.mjs FILE PORT_FILE
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [file, portFile] = process.argv.slice(2);
const server = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk.toString()));
  request.on('end', () => {
    appendFileSync(file, `${request.method} ${request.url} ${body.replace(/\n/g, ' ')}\n`);
    response.writeHead(200).end();
  });
});
server.listen(0, '127.0.0.1', () => writeFileSync(portFile, `${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
