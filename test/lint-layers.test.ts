/**
 * The import rules of the house (eslint.config.js) on planted violations:
 * each must be reported, and the allowed imports must not be.
 */
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';

const eslint = new ESLint({ cwd: PACKAGE_ROOT });

/** The messages of the layer rules for `code` as if it were the file `file` of the repository. */
async function layerMessages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(PACKAGE_ROOT, file) });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === '@typescript-eslint/no-restricted-imports' || message.ruleId === 'no-restricted-syntax')
    .map((message) => message.message);
}

describe('the layer rules', () => {
  it.each([
    ['src/chroot/planted.ts', "import { deployCommand } from '../commands/deploy.js';\nexport const x = deployCommand;\n"],
    ['src/chroot/planted.ts', "import { readChroot } from '../status/read-chroot.js';\nexport const x = readChroot;\n"],
    ['src/config/planted.ts', "import { loadFleet } from '../fleet/fleet.js';\nexport const x = loadFleet;\n"],
    ['src/render/planted.ts', "import { runCli } from '../cli.js';\nexport const x = runCli;\n"],
    ['src/nix/planted.ts', "import { renderFleet } from '../render/render-fleet.js';\nexport const x = renderFleet;\n"],
    ['src/protocol/planted.ts', "import { LOGS_DIR } from '../chroot/layout.js';\nexport const x = LOGS_DIR;\n"],
    ['src/util/planted.ts', "import { UserError } from '../errors.js';\nexport const x = UserError;\n"],
    ['src/exec-planted.ts', "import { runNix } from './nix/nix.js';\nexport const x = runNix;\n"],
    ['src/cli.ts', "import { loadConfig } from './config/config.js';\nexport const x = loadConfig;\n"],
    ['src/cli.ts', "import { deployCommand } from './commands/deploy.js';\nexport const x = deployCommand;\n"],
    ['src/status/planted.ts', "export const x = () => import('../commands/status.js');\n"],
    ['src/chroot/planted.ts', "import { forgetInRollout } from '../rollout/wave-publication.js';\nexport const x = forgetInRollout;\n"],
    ['src/status/planted.ts', "import { decideAdvance } from '../rollout/decision.js';\nexport const x = decideAdvance;\n"],
  ])('%s: reports %j', async (file, code) => {
    expect(await layerMessages(file, code)).toHaveLength(1);
  });

  it.each([
    ['src/status/planted.ts', "import { STATES_FILE } from '../chroot/layout.js';\nimport { runNix } from '../nix/nix.js';\nexport const x = [STATES_FILE, runNix];\n"],
    ['src/commands/planted.ts', "import { readChroot } from '../status/read-chroot.js';\nimport { deployCommand } from './deploy.js';\nexport const x = [readChroot, deployCommand];\n"],
    ['src/cli.ts', "import type { DeployCommandOptions } from './commands/deploy.js';\nexport const x = (o: DeployCommandOptions) => o;\nexport const y = () => import('./commands/deploy.js');\n"],
    ['src/chroot/planted.ts', "import { compareText } from '../util/text.js';\nimport { UserError } from '../errors.js';\nexport const x = [compareText, UserError];\n"],
    ['src/config/planted.ts', "import { parseLogHeader } from '../protocol/log-header.js';\nexport const x = parseLogHeader;\n"],
    ['src/rollout/planted.ts', "import { publishStaged } from '../chroot/publish.js';\nimport { readChroot } from '../status/read-chroot.js';\nexport const x = [publishStaged, readChroot];\n"],
  ])('%s: allows %j', async (file, code) => {
    expect(await layerMessages(file, code)).toEqual([]);
  });
});

/** The messages of the cycle rule for `code` as the file `file` (the modules it imports are read from disk). */
async function cycleMessages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(PACKAGE_ROOT, file) });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'bento/no-import-cycle').map((message) => message.message);
}

describe('the import cycle rule', () => {
  it('reports a module that imports one that imports it back, inside a directory', async () => {
    // protocol/log-name.ts imports store-path.ts: store-path importing log-name closes a loop.
    const messages = await cycleMessages('src/protocol/store-path.ts', "import { parseLogName } from './log-name.js';\nexport const x = parseLogName;\n");
    expect(messages).toEqual([expect.stringContaining('import cycle: store-path.ts → log-name.ts → store-path.ts')]);
  });

  it('reports a longer loop through a type import', async () => {
    // status/states.ts → protocol/log-file.ts → protocol/log-name.ts → protocol/store-path.ts: back to states closes it.
    const messages = await cycleMessages('src/protocol/store-path.ts', "import type { StateId } from '../status/states.js';\nexport type X = StateId;\n");
    expect(messages).toEqual([expect.stringContaining('import cycle: store-path.ts → ../status/states.ts → log-file.ts → log-name.ts → store-path.ts')]);
  });

  it('finds no cycle in src/ as it is', async () => {
    const results = await eslint.lintFiles(['src/**/*.ts']);
    const cycles = results.flatMap((result) => result.messages.filter((message) => message.ruleId === 'bento/no-import-cycle').map((message) => `${result.filePath}: ${message.message}`));
    expect(cycles).toEqual([]);
  });

  it('allows the same imports without the loop', async () => {
    expect(await cycleMessages('src/protocol/log-name.ts', "import { storeBasenameProblem } from './store-path.js';\nexport const x = storeBasenameProblem;\n")).toEqual([]);
  });
});
