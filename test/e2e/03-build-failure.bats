#!/usr/bin/env bats
# A configuration whose build fails (docs/protocol.md §6 steps 3 and 5): a failure log,
# the configuration is remembered as tried and not rebuilt on every run; a
# new publication is tried.

load lib/e2e

setup_file() {
	e2e_setup_suite a
	export A
	A=$(sys a)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
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
	# The log names the system the machine still runs.
	assert_build_failure "$A" "$first" "e2e: this build fails on purpose"
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
