#!/usr/bin/env bats
# A configuration whose build fails (SPEC §6 steps 3 and 5): a failure log,
# the configuration is remembered as tried and not rebuilt on every run; a
# new publication is tried.

load lib/e2e

setup_file() {
	e2e_setup_suite a
	export A
	A=$(sys a)
	e2e_deploy > "$E2E_STATE/deploy.out" 2>&1 || fail "bento deploy failed:" "$(cat "$E2E_STATE/deploy.out")"
	e2e_machine "$A" > "$E2E_STATE/first-run.out" 2>&1 || fail "the first update failed:" "$(cat "$E2E_STATE/first-run.out")"
	e2e_profile "$A" > "$E2E_STATE/first-system"
}

teardown_file() {
	e2e_teardown_suite
}

@test "a build that fails: failure log with the build output, no switch, status failing" {
	first=$(cat "$E2E_STATE/first-system")
	printf '%s\n' 'echo "e2e: this build fails on purpose" >&2' 'exit 1' > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "the build failed"
	assert_contains "$output" "not retried until a new one is published"
	assert_contains "$output" "e2e: this build fails on purpose"
	record=$(e2e_record "$A")
	assert_contains "$record" "nixos-rebuild build"
	assert_not_contains "$record" "nixos-rebuild switch"
	assert_eq "$(e2e_profile "$A")" "$first" "system profile"

	# The log names the system the machine still runs.
	failure=$(e2e_logs "$A" | grep _failure)
	assert_match "$failure" "$(e2e_log_name_regex "$A" failure)"
	assert_eq "$(printf '%s\n' "$failure" | cut -d _ -f 2)" "$(basename "$first")" "store path in the log name"
	assert_contains "$(e2e_log_text "$A" _failure.log.gz)" "e2e: this build fails on purpose"
	run -0 e2e_status_state "$A"
	assert_eq "$output" failing "bento status"
}

@test "the same configuration is not built again on the next runs" {
	logs=$(e2e_logs "$A")
	e2e_clear_record "$A"
	for _ in 1 2; do
		run -0 e2e_machine "$A"
		assert_contains "$output" "no update required"
	done
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_logs "$A")" "$logs" "logs on the server"
}

@test "a new publication is tried again: success, status up to date" {
	rm "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	assert_eq "$(e2e_logs "$A" | grep -c _success)" 2 "success logs"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}
