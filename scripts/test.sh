#!/bin/sh
# The whole test suite, on a fresh Debian 12 machine as root: sets up what is
# missing, then type-checks, lints and runs every test.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
npm run -s check
