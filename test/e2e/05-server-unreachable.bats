#!/usr/bin/env bats
# The server unreachable at poll time (docs/protocol.md §6 step 1): a clear message, a
# non-zero exit, nothing changed on the machine.

load lib/e2e

setup_file() {
	e2e_setup_suite a b
	export A B
	A=$(sys a)
	B=$(sys b)
	# b has its user and chroot, but nothing deployed.
	e2e_deploy_or_fail "$A"
	e2e_first_update_or_fail "$A"
	# Something new waits on the server: a reachable server would be used.
	e2e_new_revision "$A"
	e2e_deploy_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

@test "sshd stopped: 'cannot reach the bento server', non-zero exit, nothing changed" {
	e2e_stop_sshd
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "cannot reach the bento server ($A@127.0.0.1 port $E2E_PORT); nothing was changed"
	assert_contains "$output" "connect to host 127.0.0.1 port $E2E_PORT: Connection refused"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
}

@test "a server that accepts connections and never answers: gives up after TIMEOUT, nothing changed" {
	# A TCP listener on the server's port that never says a word. It carries
	# the suite's mark, so the cleanup ends it whatever happens.
	BENTO_E2E_RUN=$E2E_ID node -e '
		const server = require("net").createServer(() => {}).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
		setTimeout(() => server.close(), 120000).unref();
	' "$E2E_PORT" > "$BATS_TEST_TMPDIR/silent.out" 3>&- &
	silent=$!
	until grep -q listening "$BATS_TEST_TMPDIR/silent.out"; do sleep 0.05; done
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"

	start=$(date +%s)
	run -1 e2e_machine "$A"
	elapsed=$(($(date +%s) - start))
	kill "$silent"
	wait "$silent" || true
	assert_contains "$output" "cannot reach the bento server"
	assert_contains "$output" "Connection timed out during banner exchange"
	# TIMEOUT=5 in config.sh: the client waits about that long, not forever.
	[ "$elapsed" -le 15 ] || fail "the client waited ${elapsed}s for a silent server (TIMEOUT=5)"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
}

@test "the server is back: the waiting configuration is applied" {
	e2e_start_sshd
	run -0 e2e_machine "$A"
	assert_contains "$output" "a new configuration is available"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
}

@test "reachable, but nothing published for this machine yet: says so, non-zero exit, nothing changed" {
	# A new machine: bootstrap.sh, by hand.
	run -1 e2e_machine "$B" bootstrap
	before=$(e2e_machine_snapshot "$B")
	run -1 e2e_machine "$B" bootstrap
	assert_contains "$output" "the bento server has nothing published for $B yet"
	assert_not_contains "$output" "cannot reach"
	assert_eq "$(e2e_record "$B")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$B")" "$before" "the machine's files"
}
