// A raw SFTP (version 3) client for the e2e suites: it sends one request of
// every kind the OpenSSH server knows (`sftp-server -Q requests`), as a
// hostile machine could craft them, and prints one line per request:
//
//   <label> ok
//   <label> refused <status code> <message>
//
// The sftp command line cannot send some of them (an open that asks for mode
// 06755, fsetstat, copy-data, users-groups-by-id), hence this client. It
// speaks over `ssh -s ... sftp`, so the server's real sshd, chroot and
// internal-sftp options answer.
//
//   node sftp-requests.mjs SSH_ARGUMENT... (e.g. -i KEY -p PORT user@127.0.0.1)
import { spawn } from 'node:child_process';
import process from 'node:process';

const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10, OPENDIR: 11,
  READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19, SYMLINK: 20,
  STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
};
const F = { READ: 1, WRITE: 2, CREAT: 8, TRUNC: 0x10 };
const ATTR_PERMISSIONS = 4;

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u32(b.length), b]);
};
const noAttrs = () => u32(0);
const mode = (perm) => Buffer.concat([u32(ATTR_PERMISSIONS), u32(perm)]);

const ssh = spawn('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-s', ...process.argv.slice(2), 'sftp'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
let buffer = Buffer.alloc(0);
let waiting;
ssh.stdout.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  deliver();
});
ssh.on('exit', (code) => {
  if (waiting) {
    process.stderr.write(`sftp-requests: ssh ended (exit ${code}) before an answer\n`);
    process.exit(2);
  }
});

function deliver() {
  if (!waiting || buffer.length < 4) return;
  const length = buffer.readUInt32BE(0);
  if (buffer.length < 4 + length) return;
  const packet = buffer.subarray(4, 4 + length);
  buffer = buffer.subarray(4 + length);
  const resolve = waiting;
  waiting = undefined;
  resolve({ type: packet[0], body: packet.subarray(1) });
}

function send(type, ...parts) {
  const payload = Buffer.concat([Buffer.from([type]), ...parts]);
  ssh.stdin.write(Buffer.concat([u32(payload.length), payload]));
  return new Promise((resolve) => {
    waiting = resolve;
    deliver();
  });
}

let nextId = 1;
/** Sends a request; resolves to { ok, handle?, code?, message? }. */
async function request(type, ...parts) {
  const id = nextId++;
  const reply = await send(type, u32(id), ...parts);
  if (reply.body.readUInt32BE(0) !== id) throw new Error(`answer to request ${reply.body.readUInt32BE(0)}, expected ${id}`);
  const rest = reply.body.subarray(4);
  if (reply.type === T.STATUS) {
    const code = rest.readUInt32BE(0);
    const length = rest.readUInt32BE(4);
    return { ok: code === 0, code, message: rest.subarray(8, 8 + length).toString() };
  }
  if (reply.type === T.HANDLE) return { ok: true, handle: rest.subarray(4, 4 + rest.readUInt32BE(0)) };
  return { ok: true };
}
const extended = (name, ...parts) => request(T.EXTENDED, str(name), ...parts);

function report(label, result) {
  process.stdout.write(result.ok ? `${label} ok\n` : `${label} refused ${result.code} ${result.message}\n`);
  return result;
}

const init = await send(T.INIT, u32(3));
if (init.type !== T.VERSION) throw new Error(`no VERSION answer (type ${init.type})`);

// What a bento client does (must work).
report('realpath', await request(T.REALPATH, str('.')));
report('expand-path', await extended('expand-path@openssh.com', str('logs')));
report('limits', await extended('limits@openssh.com'));
report('stat', await request(T.STAT, str('/logs')));
report('lstat', await request(T.LSTAT, str('/last_change_date')));
const dir = report('opendir', await request(T.OPENDIR, str('/config')));
if (dir.handle) {
  report('readdir', await request(T.READDIR, str(dir.handle)));
  await request(T.CLOSE, str(dir.handle));
}
const readable = report('open-read', await request(T.OPEN, str('/last_change_date'), u32(F.READ), noAttrs()));
if (readable.handle) {
  report('read', await request(T.READ, str(readable.handle), u64(0), u32(4096)));
  report('fstat', await request(T.FSTAT, str(readable.handle)));
  report('close', await request(T.CLOSE, str(readable.handle)));
}
const written = report('open-write', await request(T.OPEN, str('/logs/.probe.tmp-1'), u32(F.WRITE | F.CREAT | F.TRUNC), mode(0o644)));
if (written.handle) {
  report('write', await request(T.WRITE, str(written.handle), u64(0), str('probe\n')));
  await request(T.CLOSE, str(written.handle));
}
report('posix-rename', await extended('posix-rename@openssh.com', str('/logs/.probe.tmp-1'), str('/logs/probe')));
report('rename', await request(T.RENAME, str('/logs/probe'), str('/logs/probe-renamed')));

// What a bento client never does (must be refused).
report('setstat', await request(T.SETSTAT, str('/logs/probe-renamed'), mode(0o6755)));
report('setstat-logs', await request(T.SETSTAT, str('/logs'), mode(0o777)));
report('lsetstat', await extended('lsetstat@openssh.com', str('/logs/probe-renamed'), mode(0o4755)));
const open = await request(T.OPEN, str('/logs/probe-renamed'), u32(F.READ | F.WRITE), noAttrs());
if (open.handle) {
  report('fsetstat', await request(T.FSETSTAT, str(open.handle), mode(0o4755)));
  report('fsync', await extended('fsync@openssh.com', str(open.handle)));
  report('fstatvfs', await extended('fstatvfs@openssh.com', str(open.handle)));
  report('copy-data', await extended('copy-data', str(open.handle), u64(0), u64(0), str(open.handle), u64(100)));
  await request(T.CLOSE, str(open.handle));
}
report('symlink', await request(T.SYMLINK, str('/'), str('/logs/rootlnk')));
report('hardlink', await extended('hardlink@openssh.com', str('/logs/probe-renamed'), str('/logs/hardlink')));
report('mkdir', await request(T.MKDIR, str('/logs/dir'), noAttrs()));
report('rmdir', await request(T.RMDIR, str('/logs')));
report('remove', await request(T.REMOVE, str('/logs/probe-renamed')));
report('readlink', await request(T.READLINK, str('/config')));
report('statvfs', await extended('statvfs@openssh.com', str('/')));
report('home-directory', await extended('home-directory', str('root')));
report('users-groups-by-id', await extended('users-groups-by-id@openssh.com', str(u32(0)), str(u32(0))));

// An open that asks for a set-user-ID, executable file: created (a client
// must be able to create files), but with the server's umask.
const setuid = report('open-mode-6755', await request(T.OPEN, str('/logs/setuid-probe'), u32(F.WRITE | F.CREAT | F.TRUNC), mode(0o6755)));
if (setuid.handle) await request(T.CLOSE, str(setuid.handle));

ssh.stdin.end();
