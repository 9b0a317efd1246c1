/**
 * generated/server/bento-alerts.yml, checked by Prometheus' own promtool:
 * the file is valid rules (`promtool check rules`), and fed the metrics
 * `bento status --prometheus` writes for a fleet (renderPrometheus, not
 * hand-written series, so a renamed metric or state fails here), each alert
 * fires for exactly the systems in its state (`promtool test rules`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { renderServerFiles } from '../../src/render/render-fleet.js';
import { renderPrometheus } from '../../src/status/render-prometheus.js';
import { decideStatus } from '../../src/status/states.js';
import { configWith } from '../helpers/render.js';
import { NOW, SILENCE, flake, heartbeat, logEntry, snapshot } from '../status/fixtures.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'bento-alerts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const rulesFile = path.join(work, 'bento-alerts.yml');
const rules = renderServerFiles({ config: configWith(), systems: [] }).find((file) => file.path === 'server/bento-alerts.yml');
writeFileSync(rulesFile, rules?.content ?? '');

function promtool(...args: string[]) {
  return spawnSync('promtool', args, { encoding: 'utf8', cwd: work });
}

/** promtool's input series: every sample of an exposition text, constant for ten minutes. */
function inputSeries(exposition: string): { series: string; values: string }[] {
  return exposition
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const at = line.lastIndexOf(' ');
      return { series: line.slice(0, at), values: `${line.slice(at + 1)}x10` };
    });
}

const machineAlert = (alertname: string, system: string, state: string, severity: string, summary: string, description: string) => ({
  alertname,
  labels: { system, state, severity },
  annotations: { summary, description },
});

const failing = (system: string) =>
  machineAlert(
    'BentoMachineFailing',
    system,
    'failing',
    'critical',
    `bento: ${system} is failing`,
    `The latest log of ${system} (CHROOT_DIR/${system}/logs/ on the bento server) reports a failure, or a success with another system than the one published; it says why.`,
  );
const rolledBack = (system: string) =>
  machineAlert(
    'BentoMachineRolledBack',
    system,
    'rollbacked',
    'warning',
    `bento: ${system} rolled back its new configuration`,
    `${system} switched to its new configuration, then went back to the one before (health check failed or the server was lost). Its latest log, in CHROOT_DIR/${system}/logs/ on the bento server, says why.`,
  );

const silent = (system: string) => ({
  alertname: 'BentoMachineSilent',
  labels: { system, severity: 'critical' },
  annotations: {
    summary: `bento: ${system} is silent`,
    description: `The bento server has not heard from ${system} for SILENT_AFTER (config.sh): no heartbeat, no log. It is switched off, offline, or its bento-upgrade timer is broken. \`bento status\` says when it was last seen.`,
  },
});
const drifted = (system: string) => ({
  alertname: 'BentoMachineDrift',
  labels: { system, severity: 'warning' },
  annotations: {
    summary: `bento: ${system} runs a system bento did not install`,
    description: `${system} runs another store path than its latest log names: someone ran nixos-rebuild or a rollback by hand. The next published configuration puts it back.`,
  },
});

const ALERTS = ['BentoMachineFailing', 'BentoMachineSilent', 'BentoMachineDrift', 'BentoMachineRolledBack', 'BentoRolloutHalted'];

/** Runs `promtool test rules` on the metrics of `exposition`, expecting exactly `expected` at 5 min. */
function testRules(exposition: string, expected: { alertname: string; labels: Record<string, string>; annotations: Record<string, string> }[]) {
  const test = {
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: [
      {
        interval: '1m',
        input_series: inputSeries(exposition),
        alert_rule_test: ALERTS.map((alertname) => ({
          eval_time: '5m',
          alertname,
          exp_alerts: expected.filter((alert) => alert.alertname === alertname).map((alert) => ({ exp_labels: alert.labels, exp_annotations: alert.annotations })),
        })),
      },
    ],
  };
  const file = path.join(work, 'test.yml');
  writeFileSync(file, JSON.stringify(test, null, 2));
  return promtool('test', 'rules', file);
}

const rollout: RolloutState = { version: 1, startedAt: '2024-06-01T11:00:00.000Z', waves: [['canary'], ['*']], current: 0, status: 'running', systems: {} };

describe('the Prometheus alert rules', () => {
  it('are valid rules for promtool', () => {
    const run = promtool('check', 'rules', rulesFile);
    expect(run.stderr + run.stdout).toContain('SUCCESS: 5 rules found');
    expect(run.status).toBe(0);
  });

  it('fire for each failing, silent, drifted or rolled-back machine and a halted rollout, and for nothing else', () => {
    const statuses = [
      snapshot('nas', { expected: flake('r7ips2c6'), logs: [logEntry('r7ips2c6', 'failure', 90)] }),
      snapshot('router', { expected: flake('a1'), logs: [logEntry('a1', 'rollback', 60)] }),
      snapshot('canary', { expected: flake('b2'), logs: [logEntry('b2', 'success', 30)], heartbeat: heartbeat(20, 'b2') }),
      snapshot('laptop', { expected: flake('c3'), logs: [logEntry('c3', 'success', 9000)], heartbeat: heartbeat(7200, 'c3') }),
      snapshot('db', { expected: flake('d4'), logs: [logEntry('d4', 'success', 900)], heartbeat: heartbeat(60, 'e5') }),
      snapshot('new', { lastChangeMs: null }),
    ].map((system) => decideStatus(system, SILENCE));
    const halted: RolloutState = { ...rollout, status: 'halted', halt: { at: rollout.startedAt, reason: 'did not report "success"', systems: ['router'] } };
    const run = testRules(renderPrometheus(statuses, NOW.getTime(), halted), [
      failing('nas'),
      silent('laptop'),
      drifted('db'),
      rolledBack('router'),
      {
        alertname: 'BentoRolloutHalted',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'bento: the staged rollout halted',
          description:
            'A wave of the staged rollout did not report success in time, so the next waves were not published. `bento rollout status` says why; `bento rollout resume` or `abort` decides.',
        },
      },
    ]);
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  it('stay quiet for a fleet that is up to date, with its rollout running', () => {
    const statuses = [snapshot('canary', { expected: flake('b2'), logs: [logEntry('b2', 'success', 30)] })].map((system) => decideStatus(system));
    const run = testRules(renderPrometheus(statuses, NOW.getTime(), rollout), []);
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  it('a wrong expectation fails promtool (the check above can fail)', () => {
    const statuses = [snapshot('canary', { expected: flake('b2'), logs: [logEntry('b2', 'success', 30)] })].map((system) => decideStatus(system));
    const run = testRules(renderPrometheus(statuses, NOW.getTime()), [failing('canary')]);
    expect(run.status).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('BentoMachineFailing');
  });
});
