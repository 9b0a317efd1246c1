#!/usr/bin/env bats
# SSH sessions per client cycle, counted on the server: sshd (LogLevel
# VERBOSE) logs one "Accepted publickey" line per login. A poll with nothing
# new is one session; a full update at most two (the poll and the download
# share one connection; the log goes up in a second one, which is also the
# check that the server is still reachable after the switch).

load lib/e2e

setup_file() {
	e2e_setup_suite a b:nonflake
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail
}

teardown_file() {
	e2e_teardown_suite
}

# sessions_of COMMAND...: runs it, prints how many logins it took.
sessions_of() {
	local before
	before=$(e2e_accepted)
	"$@" > "$BATS_TEST_TMPDIR/run.out" 2>&1 || fail "$* failed:" "$(cat "$BATS_TEST_TMPDIR/run.out")"
	echo $(($(e2e_accepted) - before))
}

# Prints a measurement into the TAP output.
measured() {
	printf '# measured: %s\n' "$*" >&3
}

@test "full update cycle of a new machine (flake, bootstrap.sh): two sessions" {
	sessions=$(sessions_of e2e_machine "$A" bootstrap)
	measured "bootstrap.sh, new configuration (flake): $sessions sessions"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/run.out")" "switching to"
	assert_eq "$sessions" 2 "SSH sessions"
	# Every session was a login of this machine's own user.
	assert_eq "$(grep 'Accepted publickey' "$E2E_SERVER/sshd.log" | grep -vc "for $A from 127.0.0.1")" 0 "logins of other users"
}

@test "bootstrap.sh on a new machine (no flakes): two sessions" {
	sessions=$(sessions_of e2e_machine "$B" bootstrap)
	measured "bootstrap.sh (configuration.nix): $sessions sessions"
	assert_eq "$sessions" 2 "SSH sessions"
}

@test "a poll with nothing new: exactly one session" {
	for name in "$A" "$B"; do
		sessions=$(sessions_of e2e_machine "$name")
		measured "update.sh, nothing new ($name): $sessions session(s)"
		assert_contains "$(cat "$BATS_TEST_TMPDIR/run.out")" "no update required"
		assert_eq "$sessions" 1 "SSH sessions"
	done
}

@test "a new configuration for a running machine: at most two sessions" {
	e2e_new_revision "$A"
	e2e_deploy
	sessions=$(sessions_of e2e_machine "$A")
	measured "update.sh, new configuration for a running machine: $sessions sessions"
	[ "$sessions" -le 2 ] || fail "$sessions sessions for one update cycle"
}

@test "a poll that also delivers a log queued by an earlier run: still one session" {
	# A configuration that fails to build while the server is away: its
	# failure log stays queued on the machine.
	printf 'exit 1\n' > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	e2e_stop_sshd_hook "$A" before-build
	run -1 e2e_machine "$A"
	e2e_clear_hooks "$A"
	[ -n "$(ls "$E2E_MACHINES/$A/var-bento/.bento/pending")" ] || fail "no log was queued"
	e2e_start_sshd

	sessions=$(sessions_of e2e_machine "$A")
	measured "update.sh, nothing new + one queued log: $sessions session(s)"
	assert_eq "$sessions" 1 "SSH sessions"
	assert_eq "$(ls "$E2E_MACHINES/$A/var-bento/.bento/pending")" "" "logs left on the machine"
	rm "$E2E_FLEET/hosts/$A/build-extra.sh"
}
