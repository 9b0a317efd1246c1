#!/usr/bin/env node
/**
 * The `bento` executable: runs the command line and sets the exit status.
 * Kept apart from cli.ts so that the program can be built and run in a test
 * without running at import.
 */
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv);
