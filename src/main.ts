#!/usr/bin/env node
/**
 * The `bento` executable: runs the command line and sets the exit status.
 * Kept apart from cli.ts so that the program can be built and run in a test
 * without running at import.
 *
 * Built (package.json's build), dist/main.js is esbuild's split bundle of
 * this file, after tsc: each module the CLI imports on demand (a command,
 * execa, Handlebars) is a chunk of dist/, one file instead of one per
 * module; a single-file bundle would load every command's code on every run
 * (bench/README.md). The chunks sit in dist/ itself, where paths.ts finds
 * the package root, and the banner gives the CommonJS packages the
 * `require` an ES module lacks. The rest of tsc's dist/ stays: the log
 * reader's worker thread runs dist/status/read-logs.js, and tests import
 * the modules built.
 */
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv);
