/**
 * `bento trigger`: machines asked in parallel through their listen-update
 * socket, each within the timeout; triggered, unreachable, or something
 * else listening; where a machine is found (system name, TRIGGER_DOMAIN,
 * TRIGGER_ADDRESSES). The machines here are local TCP servers that answer
 * as the client module's listen-update@ script does (test/e2e/15-listen-update.bats
 * runs the real script).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { bento as bentoSync, CLI, type CliRun } from '../helpers/cli.js';

/** The CLI as a whole process, without blocking this one: the machines here are servers of this process. */
function bento(args: string[], options: { env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

interface Machine {
  port: number;
  /** Request heads received. */
  requests: string[];
  close(): Promise<void>;
}

/** A listener that reads the request head, then answers with `answer` (nothing: it never answers). */
async function listen(answer: string | null): Promise<Machine> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // The machine's side, not the code under test: a real listener (the
    // listen-update@ socket) outlives a client that resets.
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString();
      if (!head.includes('\r\n\r\n')) return;
      requests.push(head);
      // Like the listen-update@ script: the status line, then the journal as it comes.
      if (answer !== null) socket.write(`${answer}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbento: polling\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function closedPort(): Promise<number> {
  const machine = await listen(null);
  await machine.close();
  return machine.port;
}

let dir: string;
const machines: Machine[] = [];
afterAll(async () => {
  for (const machine of machines) await machine.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-trigger-'));
});

function fleet(name: string, lines: string[], systems: string[] = []): string {
  const fleetDir = path.join(dir, name);
  const chroot = path.join(fleetDir, 'chroot');
  for (const system of systems) mkdirSync(path.join(chroot, system, 'logs'), { recursive: true });
  mkdirSync(fleetDir, { recursive: true });
  writeFileSync(path.join(fleetDir, 'config.sh'), [`CHROOT_DIR=${chroot}`, 'REMOTE_IP=127.0.0.1', ...lines].join('\n') + '\n');
  return fleetDir;
}

describe('bento trigger', () => {
  it('asks every machine at once: triggered, unreachable, not bento, silent; exit 2', async () => {
    const laptop = await listen('HTTP/1.0 200 OK');
    const nas = await listen('HTTP/1.0 200 OK');
    const web = await listen('HTTP/1.1 404 Not Found');
    const silent = await listen(null);
    machines.push(laptop, nas, web, silent);
    const refused = await closedPort();
    const fleetDir = fleet('mixed', [
      `TRIGGER_ADDRESSES="laptop=127.0.0.1:${laptop.port} nas=127.0.0.1:${nas.port} web=127.0.0.1:${web.port} silent=127.0.0.1:${silent.port} gone=127.0.0.1:${refused}"`,
    ], ['laptop', 'nas', 'web', 'silent', 'gone']);
    const start = Date.now();
    const run = await bento(['trigger', '--timeout', '2', 'laptop', 'web', 'silent', 'gone', 'nas'], { env: { BENTO_DIR: fleetDir } });
    const seconds = (Date.now() - start) / 1000;
    const lines = run.stdout.trim().split('\n').sort();
    expect(lines).toEqual([
      `gone: unreachable (127.0.0.1:${refused}: ECONNREFUSED)`,
      `laptop: triggered (127.0.0.1:${laptop.port})`,
      `nas: triggered (127.0.0.1:${nas.port})`,
      `silent: unreachable (127.0.0.1:${silent.port}: no answer within 2 s)`,
      `web: unreachable (127.0.0.1:${web.port}: not a bento listen-update socket: "HTTP/1.1 404 Not Found")`,
    ]);
    expect(run.stderr).toContain('trigger: 2 triggered, 3 unreachable (they poll on their timer as usual)');
    expect(run.status).toBe(2);
    // In parallel: one timeout for the silent one, not one per machine.
    expect(seconds).toBeLessThan(4.5);
    expect(laptop.requests).toHaveLength(1);
    expect(laptop.requests[0]).toMatch(/^GET \/ HTTP\/1\.0\r\nHost: 127\.0\.0\.1:\d+\r\nUser-Agent: bento trigger\r\n\r\n$/);
  });

  it('--all asks every system of CHROOT_DIR; all triggered: exit 0', async () => {
    const a = await listen('HTTP/1.0 200 OK');
    const b = await listen('HTTP/1.0 200 OK');
    machines.push(a, b);
    const fleetDir = fleet('all', [`TRIGGER_ADDRESSES="a=127.0.0.1:${a.port},b=127.0.0.1:${b.port}"`], ['a', 'b']);
    const run = await bento(['trigger', '--all'], { env: { BENTO_DIR: fleetDir } });
    expect(run.stdout.trim().split('\n').sort()).toEqual([`a: triggered (127.0.0.1:${a.port})`, `b: triggered (127.0.0.1:${b.port})`]);
    expect(run.status).toBe(0);
  });

  it("--all asks the systems' directories only (protocol/layout.ts, listChrootDir): not bento's files, a stray file, a link that leads to no directory", async () => {
    const a = await listen('HTTP/1.0 200 OK');
    const linked = await listen('HTTP/1.0 200 OK');
    machines.push(a, linked);
    const fleetDir = fleet('walker', [`TRIGGER_ADDRESSES="a=127.0.0.1:${a.port},linked=127.0.0.1:${linked.port}"`], ['a']);
    const chroot = path.join(fleetDir, 'chroot');
    writeFileSync(path.join(chroot, 'states.txt'), '');
    writeFileSync(path.join(chroot, 'notes'), '');
    // The administrator's link to a system's directory elsewhere is a system; links to nothing or to a file are not.
    mkdirSync(path.join(dir, 'walker-elsewhere', 'logs'), { recursive: true });
    symlinkSync(path.join(dir, 'walker-elsewhere'), path.join(chroot, 'linked'));
    symlinkSync(path.join(chroot, 'nowhere'), path.join(chroot, 'dangling'));
    symlinkSync(path.join(chroot, 'notes'), path.join(chroot, 'tofile'));
    const run = await bento(['trigger', '--all', '--timeout', '2'], { env: { BENTO_DIR: fleetDir } });
    expect(run.stdout.trim().split('\n').sort()).toEqual([`a: triggered (127.0.0.1:${a.port})`, `linked: triggered (127.0.0.1:${linked.port})`]);
    expect(run.status).toBe(0);
  });

  it('refuses names that are not systems of the fleet, and no names at all', () => {
    const bento = bentoSync;
    const fleetDir = fleet('names', [], ['laptop']);
    const typo = bento(['trigger', 'lapto'], { env: { BENTO_DIR: fleetDir } });
    expect(typo.stderr).toContain(`bento: error: lapto is not a system of this fleet (no ${fleetDir}/chroot/lapto)`);
    expect(typo.status).toBe(1);
    const bad = bento(['trigger', 'Laptop;reboot'], { env: { BENTO_DIR: fleetDir } });
    expect(bad.stderr).toContain('is not a valid system name');
    expect(bad.status).toBe(1);
    const none = bento(['trigger'], { env: { BENTO_DIR: fleetDir } });
    expect(none.stderr).toContain('name the machines to trigger (bento trigger NAME...), or use --all');
    expect(none.status).toBe(1);
  });

  it('without CHROOT_DIR on this machine it trusts the names, found by DNS', async () => {
    const fleetDir = fleet('remote', ['TRIGGER_DOMAIN=invalid']);
    const run = await bento(['trigger', '--timeout', '3', 'laptop'], { env: { BENTO_DIR: fleetDir } });
    // .invalid never resolves (RFC 6761).
    expect(run.stdout).toMatch(/^laptop: unreachable \(laptop\.invalid:51337: (ENOTFOUND|EAI_AGAIN|no answer within 3 s)\)\n$/);
    expect(run.status).toBe(2);
  });
});
