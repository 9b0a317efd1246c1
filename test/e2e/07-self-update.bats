#!/usr/bin/env bats
# SELF_UPDATE (docs/protocol.md §6 step 2): with nothing new on the server, a flake
# machine updates its inputs and rebuilds when one changed, reporting
# `autoupdate`. The input here is a local path: input, so that it can change
# without a network.

load lib/e2e

setup_file() {
	e2e_setup_suite a:selfupdate
	export A INPUT
	A=$(sys a)
	INPUT=$E2E_INPUTS/$A
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

@test "nothing new, inputs unchanged: the inputs are checked, nothing is rebuilt" {
	m=$E2E_MACHINES/$A/var-bento
	[ -f "$m/SELF_UPDATE" ] && [ -f "$m/flake.lock" ] || fail "SELF_UPDATE and flake.lock were not published"
	assert_eq "$(cat "$(e2e_profile "$A")/input")" 1 "input seen by the running system"
	logs=$(e2e_logs "$A")
	sessions=$(e2e_accepted)
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	assert_contains "$output" "updating the flake inputs (SELF_UPDATE)"
	assert_contains "$output" "no update required (flake inputs unchanged)"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	cmp "$m/flake.lock" "$E2E_FLEET/hosts/$A/flake.lock"
	assert_eq "$(e2e_logs "$A")" "$logs" "logs on the server"
	assert_eq "$(($(e2e_accepted) - sessions))" 1 "SSH sessions"
}

@test "nothing new, an input changed: inputs updated, rebuilt, switched, autoupdate log, status auto-updated" {
	published=/nix/store/$(e2e_expected "$A")
	printf '2\n' > "$INPUT/version"
	e2e_clear_record "$A"
	sessions=$(e2e_accepted)

	run -0 e2e_machine "$A"
	sessions=$(($(e2e_accepted) - sessions))
	printf '# measured: update.sh, SELF_UPDATE with a changed input: %s sessions\n' "$sessions" >&3
	[ "$sessions" -le 2 ] || fail "$sessions SSH sessions for one update cycle"
	assert_contains "$output" "updating the flake inputs (SELF_UPDATE)"
	m=$E2E_MACHINES/$A/var-bento
	! cmp -s "$m/flake.lock" "$E2E_FLEET/hosts/$A/flake.lock" || fail "flake.lock was not updated"
	record=$(e2e_record "$A")
	assert_contains "$record" "nixos-rebuild build --flake /var/bento#$A --fallback"
	assert_contains "$record" "nixos-rebuild switch --flake /var/bento#$A --fallback"
	new=$(e2e_profile "$A")
	[ "$new" != "$published" ] || fail "the system did not change"
	assert_eq "$(cat "$new/input")" 2 "input seen by the running system"
	autoupdate=$(e2e_logs "$A" | grep _autoupdate)
	assert_match "$autoupdate" "$(e2e_log_name_regex "$A" autoupdate)"
	assert_eq "$(printf '%s\n' "$autoupdate" | cut -d _ -f 2)" "$(basename "$new")" "store path in the log name"
	assert_contains "$(e2e_log_text "$A" _autoupdate.log.gz)" "e2e: building the system of $A"
	run -0 e2e_status_state "$A"
	assert_eq "$output" auto-updated "bento status"

	# And the next poll is quiet again.
	e2e_clear_record "$A"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required (flake inputs unchanged)"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
}

@test "a new publication (the server updated its lock too) replaces the local lock: success, up to date" {
	(cd "$E2E_FLEET/hosts/$A" && nix --extra-experimental-features 'nix-command flakes' flake update)
	e2e_deploy
	run -0 e2e_machine "$A"
	assert_contains "$output" "a new configuration is available"
	cmp "$E2E_MACHINES/$A/var-bento/flake.lock" "$E2E_FLEET/hosts/$A/flake.lock"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}
