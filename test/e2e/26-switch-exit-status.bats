#!/usr/bin/env bats
# A switch that reports an error after it activated the new system
# (docs/protocol.md §6 step 3): switch-to-configuration (nixpkgs' Perl one
# and switch-to-configuration-ng, at the end of do_system_switch) exits 4
# when any unit is failed after the switch, even one that had failed before
# it, and nixos-rebuild then exits 1; the new system runs all the same. What
# decides is which system runs: the new one goes through the health gate and
# the check of the server like any switch (kept, or rolled back), and the
# log says which units failed and whether they had failed before. A switch
# that fails before the activation leaves the old system running: a failure.
# Both paths: nixos-rebuild (a flake machine) and a prebuilt machine
# (switch-to-configuration through systemd-run).

load lib/e2e

setup_file() {
	E2E_NOLOCALBUILD=0 e2e_setup_suite a p:prebuilt
	export A P
	A=$(sys a)
	P=$(sys p)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
	e2e_first_update_or_fail "$P"
}

teardown_file() {
	e2e_teardown_suite
}

setup() {
	local name
	for name in "$A" "$P"; do
		e2e_clear_hooks "$name"
		rm -f "$E2E_MACHINES/$name/run/bento-e2e/failed-units" "$E2E_MACHINES/$name/run/bento-e2e/fail-boot-loader"
		rm -f "$E2E_FLEET/hosts/$name/failed-units" "$E2E_FLEET/hosts/$name/health.conf"
	done
	e2e_listening || e2e_start_sshd
}

# failed_before NAME UNIT: UNIT is failed on machine NAME whatever system runs.
failed_before() {
	printf '%s\n' "$2" > "$E2E_MACHINES/$1/run/bento-e2e/failed-units"
}

# new_revision NAME: a new configuration published for NAME (a prebuilt
# system gets a new package too).
new_revision() {
	if [ "$1" = "$P" ]; then e2e_bump_package "$P"; fi
	e2e_new_revision "$1"
	e2e_deploy "$1" > /dev/null
}

# The generations of machine NAME's system profile: "<generation> <system>" a line.
profile_generations() {
	local link generation
	for link in "$E2E_MACHINES/$1"/profiles/system-*-link; do
		[ -L "$link" ] || continue
		generation=${link##*/system-}
		printf '%s %s\n' "${generation%-link}" "$(readlink -f "$link")"
	done
}

@test "nixos-rebuild exits 1 because a unit that had failed before is still failed: the new system runs, stays, and reports success" {
	failed_before "$A" e2e-old.service
	new_revision "$A"
	expected=$(e2e_expected "$A")
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	assert_contains "$output" "the switch exited with status 1, but $expected runs: the health gate and the check of the server decide"
	assert_contains "$output" "units failed after the switch: e2e-old.service (failed before the switch too)"
	assert_not_contains "$output" "rolling back"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$expected" "system profile"
	assert_eq "$(e2e_current_system "$A")" "/nix/store/$expected" "/run/current-system"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" success)"
	log=$(e2e_log_text "$A" _success.log.gz)
	assert_contains "$log" "warning: the following units failed: e2e-old.service"
	assert_contains "$log" "units failed after the switch: e2e-old.service (failed before the switch too)"
	assert_eq "$(e2e_status_state "$A")" up-to-date "bento status"
}

@test "nixos-rebuild exits 1 after a switch that also lost the network: the new system runs, the server is unreachable, rolled back" {
	failed_before "$A" e2e-old.service
	before=$(e2e_profile "$A")
	new_revision "$A"
	expected=$(e2e_expected "$A")
	e2e_stop_sshd_hook "$A" after-switch

	run -1 e2e_machine "$A"
	e2e_clear_hooks "$A"
	e2e_start_sshd
	assert_contains "$output" "the switch exited with status 1, but $expected runs"
	assert_contains "$output" "unreachable after the switch: rolling back"
	assert_eq "$(e2e_profile "$A")" "$before" "system profile after the rollback"
	assert_eq "$(e2e_current_system "$A")" "$before" "/run/current-system"
	run -0 e2e_machine "$A"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" rollback)"
	assert_eq "$(e2e_status_state "$A")" rollbacked "bento status"
}

@test "a unit the new system breaks: switch-to-configuration exits 4, the health gate sees the new failure, rolled back, the log names it" {
	failed_before "$A" e2e-old.service
	printf 'e2e-app.service\n' > "$E2E_FLEET/hosts/$A/failed-units"
	printf 'grace=0\n' > "$E2E_FLEET/hosts/$A/health.conf"
	before=$(e2e_profile "$A")
	new_revision "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "units failed after the switch: e2e-app.service (failed since the switch), e2e-old.service (failed before the switch too)"
	assert_contains "$output" "the new system is not healthy (units failed since the switch: e2e-app.service)"
	assert_eq "$(e2e_profile "$A")" "$before" "system profile after the rollback"
	assert_eq "$(e2e_current_system "$A")" "$before" "/run/current-system"
	assert_contains "$(e2e_log_text "$A" _rollback.log.gz)" "e2e-app.service (failed since the switch)"
}

@test "a switch that fails before the activation (the boot loader): the old system runs, a failure" {
	touch "$E2E_MACHINES/$A/run/bento-e2e/fail-boot-loader"
	current=$(e2e_current_system "$A")
	new_revision "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "the switch failed"
	assert_contains "$output" "Failed to install bootloader"
	assert_not_contains "$output" "rolling back"
	assert_eq "$(e2e_current_system "$A")" "$current" "/run/current-system"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" failure)"
	assert_eq "$(e2e_newest_log "$A" | cut -d _ -f 2)" "$(basename "$current")" "store path in the log name"
	# The profile is back on what runs; the generation that never ran is gone.
	never_ran=/nix/store/$(e2e_expected "$A")
	assert_contains "$output" "which never ran, is deleted"
	assert_eq "$(e2e_profile "$A")" "$current" "system profile"
	assert_not_contains "$(profile_generations "$A")" "$never_ran"

	# A later rollback goes back to the system that ran, not to the one that never did.
	rm -f "$E2E_MACHINES/$A/run/bento-e2e/fail-boot-loader"
	printf 'e2e-app.service\n' > "$E2E_FLEET/hosts/$A/failed-units"
	printf 'grace=0\n' > "$E2E_FLEET/hosts/$A/health.conf"
	new_revision "$A"
	run -1 e2e_machine "$A"
	assert_contains "$output" "rolling back"
	assert_eq "$(e2e_current_system "$A")" "$current" "/run/current-system after the rollback"
	assert_eq "$(e2e_profile "$A")" "$current" "system profile after the rollback"
	assert_not_contains "$(e2e_boot_entries "$A")" "$never_ran"
}

@test "prebuilt: switch-to-configuration exits 4 for a unit failed before: the new system stays, a success" {
	failed_before "$P" e2e-old.service
	new_revision "$P"
	expected=$(e2e_expected "$P")

	run -0 e2e_machine "$P"
	assert_contains "$output" "the switch exited with status 4, but $expected runs"
	assert_contains "$output" "units failed after the switch: e2e-old.service (failed before the switch too)"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	assert_match "$(e2e_newest_log "$P")" "$(e2e_log_name_regex "$P" success)"
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"
}

@test "prebuilt: switch-to-configuration exits 4 and the network is lost: rolled back" {
	failed_before "$P" e2e-old.service
	before=$(e2e_profile "$P")
	new_revision "$P"
	expected=$(e2e_expected "$P")
	e2e_stop_sshd_hook "$P" after-activation

	run -1 e2e_machine "$P"
	e2e_clear_hooks "$P"
	e2e_start_sshd
	assert_contains "$output" "the switch exited with status 4, but $expected runs"
	assert_contains "$output" "unreachable after the switch: rolling back"
	assert_eq "$(e2e_profile "$P")" "$before" "system profile after the rollback"
	assert_eq "$(e2e_current_system "$P")" "$before" "/run/current-system"
	assert_not_contains "$(e2e_record "$P")" "FORBIDDEN"
}
