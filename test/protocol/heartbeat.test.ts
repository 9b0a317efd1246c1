/**
 * protocol/heartbeat.ts: the heartbeat a machine writes into its logs/
 * (docs/protocol.md §5a), read field by field; what is not of its form is
 * unknown, never an error.
 */
import { describe, expect, it } from 'vitest';
import { HEARTBEAT_FILE, parseHeartbeat } from '../../src/protocol/heartbeat.js';
import { parseLogName } from '../../src/protocol/log-name.js';
import { isUploadTemporary } from '../../src/protocol/log-file.js';

const RUNNING = '0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-24.05';
const BOOTED = '1dyc4lgr1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-24.05';
const DIGEST = 'ab'.repeat(32);
const FIRST = 'bento heartbeat of web-1 on 2026-11-26 10:00:00 UTC';

describe('parseHeartbeat', () => {
  it('reads what the client writes', () => {
    const text = `${FIRST}\nprotocol: 2\nconfiguration: ${DIGEST} 2026-11-26T09:00:00.000Z\nrunning: ${RUNNING}\nbooted: ${BOOTED}\nreboot-pending: yes\n\n`;
    expect(parseHeartbeat(text)).toEqual({ protocol: 2, configuration: DIGEST, running: RUNNING, booted: BOOTED, rebootPending: true });
    expect(parseHeartbeat(text.replace('reboot-pending: yes', 'reboot-pending: no')).rebootPending).toBe(false);
  });

  it('leaves out what a machine could not tell, or wrote in another form', () => {
    expect(parseHeartbeat(`${FIRST}\nprotocol: 2\nrunning: ${RUNNING}\n\n`)).toEqual({ protocol: 2, running: RUNNING });
    expect(parseHeartbeat(`${FIRST}\nrunning: /nix/store/${RUNNING}\nbooted: ../../etc\nreboot-pending: maybe\n\n`)).toEqual({});
    // Given twice: which one is meant cannot be told.
    expect(parseHeartbeat(`${FIRST}\nrunning: ${RUNNING}\nrunning: ${BOOTED}\n\n`)).toEqual({});
    // Not a store path for nix: never shown as one (a 4 KiB label, JSON field, alert).
    expect(parseHeartbeat(`${FIRST}\nrunning: ${RUNNING.slice(0, 33)}${'x'.repeat(3000)}\nbooted: ${BOOTED}\n\n`)).toEqual({ booted: BOOTED });
    // Keys a later version adds are skipped.
    expect(parseHeartbeat(`${FIRST}\nuptime: 3d\nrunning: ${RUNNING}\n\n`)).toEqual({ running: RUNNING });
  });

  it('knows nothing from a text that is not a heartbeat: empty, cut short, no first line', () => {
    expect(parseHeartbeat('')).toEqual({});
    expect(parseHeartbeat(`${FIRST}\nrunning: ${RUNNING}\n`)).toEqual({});
    expect(parseHeartbeat(`running: ${RUNNING}\n\n`)).toEqual({});
    expect(parseHeartbeat(`${FIRST}\n${'x'.repeat(5000)}\nrunning: ${RUNNING}\n\n`)).toEqual({});
  });

  it('reads the reboot window and what a pending reboot waits for, only in their form', () => {
    const text = (lines: string[]) => ['bento heartbeat of web-1 on 2026-11-26 10:00:00 UTC', 'protocol: 2', 'reboot-pending: yes', ...lines, '', ''].join('\n');
    expect(parseHeartbeat(text(['reboot-window: Mon..Fri 02:00-05:00', 'reboot-waiting: window']))).toEqual({ protocol: 2, rebootPending: true, rebootWindow: 'Mon..Fri 02:00-05:00', rebootWaiting: 'window' });
    expect(parseHeartbeat(text(['reboot-window: Mon..Fri 02:00-05:00\x1b[2J', 'reboot-waiting: forever']))).toEqual({ protocol: 2, rebootPending: true });
    expect(parseHeartbeat(text([`reboot-window: ${'Mon,'.repeat(20)}Tue 02:00-05:00`]))).toEqual({ protocol: 2, rebootPending: true });
  });

  it('lives under a name that is neither a log nor an upload temporary', () => {
    expect(parseLogName(HEARTBEAT_FILE).ok).toBe(false);
    expect(isUploadTemporary(HEARTBEAT_FILE)).toBe(false);
    expect(isUploadTemporary(`.${HEARTBEAT_FILE}.tmp-123`)).toBe(true);
  });
});
