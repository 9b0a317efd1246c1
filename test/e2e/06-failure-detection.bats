#!/usr/bin/env bats
# Failures that nixos-rebuild does not report by its exit status (docs/protocol.md §6
# step 3): "No space left" in the output, and a switch that leaves the
# system profile unchanged.

load lib/e2e

setup_file() {
	e2e_setup_suite a
	export A
	A=$(sys a)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

setup() {
	e2e_clear_hooks "$A"
	rm -f "$E2E_FLEET/hosts/$A/build-extra.sh"
}

@test "'No space left' in the output of a build that succeeds: failure, no switch, tried again on the next run" {
	profile=$(e2e_profile "$A")
	update=$(sha256sum < "$E2E_FLEET/generated/systems/$A/update.sh")
	# The build succeeds (exit 0) but says it ran out of space, as an
	# installation into a full /boot does.
	printf '%s\n' "echo \"cp: error writing '/boot/kernels/bzImage': No space left on device\" >&2" > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "no space left on this machine while building the configuration"
	assert_contains "$output" "this configuration is tried again on the next run"
	assert_contains "$output" "No space left on device"
	assert_build_failure "$A" "$profile" "No space left on device"
	# /var/bento has room: what was installed (the verified new configuration,
	# with update.sh, which the timer runs) stays. Only what the run built is freed.
	installed=$(e2e_installed_configuration "$A")
	assert_eq "$(sha256sum < "$E2E_MACHINES/$A/var-bento/update.sh")" "$update" "/var/bento/update.sh"
	cmp "$E2E_FLEET/hosts/$A/system.conf" "$E2E_MACHINES/$A/var-bento/system.conf"
	[ -d "$E2E_MACHINES/$A/var-bento/.git" ] || fail "the configuration's git tree is gone"
	[ ! -e "$E2E_MACHINES/$A/var-bento/.bento/result" ] || fail "the build result is still there"
	# Not remembered as tried: the next run builds it again (and reports it once only).
	logs=$(e2e_log_count "$A")
	e2e_clear_record "$A"
	run -1 e2e_machine "$A"
	assert_contains "$output" "no space left on this machine while building the configuration"
	assert_contains "$(e2e_record "$A")" "nixos-rebuild build"
	assert_eq "$(e2e_log_count "$A")" "$logs" "logs on the server"
	assert_eq "$(e2e_installed_configuration "$A")" "$installed" "the installed configuration"
}

@test "a switch that exits 0 but leaves the system profile unchanged: failure" {
	profile=$(e2e_profile "$A")
	generation=$(e2e_generation "$A")
	e2e_new_revision "$A"
	e2e_deploy
	touch "$E2E_MACHINES/$A/hooks/switch-noop"
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	assert_contains "$output" "the switch left the system profile unchanged; counted as a failure"
	assert_contains "$(e2e_record "$A")" "nixos-rebuild switch --flake /var/bento#$A --fallback"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	assert_eq "$(e2e_generation "$A")" "$generation" "profile generation"
	assert_eq "$(e2e_current_system "$A")" "$profile" "/run/current-system"
	failure=$(e2e_newest_log "$A")
	assert_match "$failure" "$(e2e_log_name_regex "$A" failure)"
	assert_eq "$(printf '%s\n' "$failure" | cut -d _ -f 2)" "$(basename "$profile")" "store path in the log name"
	assert_contains "$(e2e_log_text "$A" _failure.log.gz)" "(e2e: this switch leaves the system profile alone)"
	run -0 e2e_status_state "$A"
	assert_eq "$output" failing "bento status"
}

@test "after both, a good publication succeeds" {
	e2e_new_revision "$A"
	e2e_deploy
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}
