#!/bin/sh
# The demo, on a fresh Debian 12 machine as root: sets up what is missing,
# creates a fleet with `bento init`, then renders the repository's example
# fleet (two flakes and a non-flake machine, offline-buildable) and shows
# where to look. Everything goes to a temporary directory that is kept.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
bento() { node dist/cli.js "$@"; }

demo=$(mktemp -d /tmp/bento-demo.XXXXXX)
echo
echo "== bento init: a new fleet in $demo/new-fleet"
bento --dir "$demo/new-fleet" init

echo
echo "== bento generate: the example fleet, copied to $demo/example"
cp -RL example "$demo/example"
bento --dir "$demo/example" generate

echo
echo "Look at:"
echo "  $demo/example/config.sh                           the fleet's settings"
echo "  $demo/example/generated/systems/<name>/update.sh  what each machine runs to update itself"
echo "  $demo/example/generated/server/                   the SFTP server (NixOS module, sshd_config, Debian setup)"
echo "  $demo/new-fleet/                                  a fresh fleet to start your own"
