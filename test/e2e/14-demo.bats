#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# The demo (scripts/demo.sh), run non-interactively to the end: the states
# it promises appear, and nothing it started is left behind.

bats_require_minimum_version 1.5.0

setup_file() {
	E2E_REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export E2E_REPO
}

leftovers() {
	getent passwd | cut -d: -f1 | grep '^demo' || true
	pgrep -af 'bento-e2e-demo' || true
	find /srv -maxdepth 1 -name 'bento-e2e-demo*' || true
}

# One run (the demo takes about 15 s), with --keep: what it shows, what it
# keeps, and that it still removes everything it started (--keep only copies
# the files before the same teardown).
@test "the demo runs the fleet end to end, shows the states moving, keeps its files with --keep, and removes what it started" {
	run --separate-stderr sh "$E2E_REPO/scripts/demo.sh" --keep < /dev/null
	[ "$status" -eq 0 ] || { echo "$output"; echo "$stderr"; false; }
	# First status: nobody reported; after the bootstraps: up to date and failing.
	[[ "$output" == *"new machine"* ]]
	[[ "$output" == *"up to date 💚"* ]]
	[[ "$output" == *"failing 🔥"* ]]
	# After the change: the laptop's rebuild is pending, then done; the nas updated itself.
	[[ "$output" == *"rebuild pending 🚩"* ]]
	[[ "$output" == *"auto updated 🤖"* ]]
	[[ "$output" == *"error: this configuration is broken on purpose"* ]]
	[[ "$stderr" == *"deploy: 1 published, 3 unchanged, 0 failed"* ]]
	[[ "$output" == *"demo: stopped the SFTP server, removed the demo's users and machines."* ]]
	# Piped: no terminal escapes.
	[[ "$output" != *$'\033['* ]]
	kept=$(printf '%s\n' "$output" | sed -n 's/^demo: the files are kept in \([^:]*\):.*/\1/p')
	[ -n "$kept" ]
	[ -f "$kept/fleet/config.sh" ]
	ls "$kept"/chroot/*/logs/*_success.log.gz > /dev/null
	ls "$kept"/fleet/generated/systems/*/update.sh > /dev/null
	rm -rf "$kept"
	[ -z "$(leftovers)" ] || { leftovers; false; }
}

@test "the demo refuses a wrong argument" {
	run bash "$E2E_REPO/scripts/demo.sh" --bogus
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: sh scripts/demo.sh [--keep]"* ]]
}
