#!/usr/bin/env bats
# The server lost after a switch (docs/protocol.md §6 step 4): the machine asks again for
# TIMEOUT seconds, then rolls back to its previous system and reports
# `rollback` once the server is back; a server back within that time is no
# loss; without a switch there is nothing to roll back.

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
	e2e_listening || e2e_start_sshd
}

stop_server_hook() {
	e2e_stop_sshd_hook "$A" "$1"
}

pending_logs() {
	ls "$E2E_MACHINES/$A/var-bento/.bento/pending"
}

@test "server unreachable after the switch: rollback to the previous generation, reported when the server is back" {
	previous=$(e2e_profile "$A")
	assert_eq "$(e2e_generation "$A")" system-1-link "profile generation"
	e2e_new_revision "$A"
	e2e_deploy
	new=/nix/store/$(e2e_expected "$A")
	stop_server_hook after-switch
	e2e_clear_record "$A"
	logs=$(e2e_logs "$A")

	start=$(date +%s)
	run -1 e2e_machine "$A"
	assert_contains "$output" "switching to $(basename "$new")"
	# It asked again for TIMEOUT (5 s in the suites' config.sh) before giving up.
	assert_contains "$output" "no bento server answers after the switch; asking again in"
	[ $(($(date +%s) - start)) -ge 4 ] || fail "it gave up before TIMEOUT"
	assert_contains "$output" "unreachable after the switch: rolling back"
	record=$(e2e_record "$A")
	assert_contains "$record" "profile $new"
	# The new system was switched to, then the previous one again.
	assert_eq "$(e2e_switch_record "$A" | tail -n 2 | cut -d ' ' -f 2-3)" "$(printf '%s switch\n%s switch' "$new" "$previous")" "switch-to-configuration calls"
	# Generation 2 was made, then the profile went back to generation 1, and
	# generation 2 was deleted: a later rollback must never land on it.
	assert_eq "$(e2e_generation "$A")" system-1-link "profile generation"
	[ ! -e "$E2E_MACHINES/$A/profiles/system-2-link" ] || fail "the generation that lost the server is still there"
	assert_eq "$(e2e_profile "$A")" "$previous" "system profile"
	assert_eq "$(e2e_current_system "$A")" "$previous" "/run/current-system"
	# Nor does the boot menu keep an entry for it (its system would be
	# garbage once collected): the boot loader lists what exists, and boots
	# the previous system.
	assert_eq "$(e2e_boot_entries "$A")" "$(printf '1 %s\ndefault 1' "$previous")" "boot menu"
	# Nothing reached the server; the rollback log waits on the machine.
	assert_eq "$(e2e_logs "$A")" "$logs" "logs on the server"
	pending=$(pending_logs)
	assert_match "$pending" "$(e2e_log_name_regex "$A" rollback)"
	assert_eq "$(printf '%s\n' "$pending" | cut -d _ -f 2)" "$(basename "$previous")" "store path in the log name"
	assert_not_contains "$pending" _success

	# The server is back: the next poll delivers the rollback log, and the
	# configuration that lost the server is not tried again.
	e2e_start_sshd
	e2e_clear_record "$A"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	rollback=$(e2e_logs "$A" | grep _rollback)
	assert_match "$rollback" "$(e2e_log_name_regex "$A" rollback)"
	text=$(e2e_log_text "$A" _rollback.log.gz)
	assert_contains "$text" "e2e: the server is gone"
	assert_contains "$text" "activating the configuration $previous"
	run -0 e2e_status_state "$A"
	assert_eq "$output" rollbacked "bento status"
}

@test "no switch (the system is already running), server lost: no rollback, the log waits for the next run" {
	profile=$(e2e_profile "$A")
	generation=$(e2e_generation "$A")
	# A publication whose system is the one running (revision 1, after the
	# rollback), with one more file that the system does not use.
	printf 'notes\n' > "$E2E_FLEET/hosts/$A/NOTES"
	e2e_write_revision "$A" 1
	run -0 e2e_deploy
	assert_eq "/nix/store/$(e2e_expected "$A")" "$profile" "states.txt"
	stop_server_hook after-build
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	assert_contains "$output" "is already running"
	assert_contains "$output" "could not upload the log; it is kept for the next run"
	assert_not_contains "$output" "rolling back"
	record=$(e2e_record "$A")
	assert_not_contains "$record" "switch"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	assert_eq "$(e2e_generation "$A")" "$generation" "profile generation"
	pending=$(pending_logs)
	assert_match "$pending" "$(e2e_log_name_regex "$A" success)"

	e2e_start_sshd
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	[ -f "$E2E_CHROOT/$A/logs/$pending" ] || fail "$pending did not reach the server"
}

@test "a build that fails, server lost: no rollback, the failure log waits for the next run" {
	profile=$(e2e_profile "$A")
	printf '%s\n' 'exit 1' > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	stop_server_hook before-build
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "the build failed"
	assert_not_contains "$output" "rolling back"
	assert_not_contains "$(e2e_record "$A")" "--rollback"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	pending=$(pending_logs)
	assert_match "$pending" "$(e2e_log_name_regex "$A" failure)"

	e2e_start_sshd
	run -0 e2e_machine "$A"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	[ -f "$E2E_CHROOT/$A/logs/$pending" ] || fail "$pending did not reach the server"
	rm "$E2E_FLEET/hosts/$A/build-extra.sh"
}

@test "the server away for a moment after the switch (its network restarting): no rollback, the update is reported" {
	e2e_new_revision "$A"
	e2e_deploy
	new=/nix/store/$(e2e_expected "$A")
	# The switch takes the server away; the test brings it back a second later.
	gone=$BATS_TEST_TMPDIR/server-gone
	e2e_hook "$A" after-switch "sh '$E2E_LIB/stop-sshd.sh' '$E2E_SERVER' && touch '$gone'"
	(
		i=0
		until [ -e "$gone" ] || [ "$i" -ge 600 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		sleep 1
		e2e_start_sshd
	) 3>&- &
	back=$!
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	wait "$back"
	assert_contains "$output" "no bento server answers after the switch; asking again"
	assert_not_contains "$output" "rolling back"
	assert_not_contains "$(e2e_record "$A")" "--rollback"
	assert_eq "$(e2e_profile "$A")" "$new" "system profile"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	assert_eq "$(e2e_newest_log "$A" | cut -d _ -f 2-)" "$(basename "$new")_success.log.gz" "newest log"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}
