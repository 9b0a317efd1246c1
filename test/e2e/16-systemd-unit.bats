#!/usr/bin/env bats
# The client run exactly as its systemd unit runs it (docs/machines.md):
# every machine's bento-upgrade.service is evaluated from
# utils/bento.nix as NixOS would (the real nixpkgs lib, test/fixtures/nixos),
# and e2e_machine runs its ExecStart with nothing but the environment the
# unit gives: its Environment= (NIX_PATH from the machine's session
# variables, HOME, Nix's variables) and a PATH made of the unit's `path` plus
# systemd's defaults (nixos/lib/systemd-lib.nix). The packages on that PATH
# hold this machine's tools of the same packages; systemd and nixos-rebuild
# are the e2e stand-ins. Every part of the cycle must work there: a flake
# and a non-flake update, the health gate, a rollback, a prebuilt switch, a
# self-update; and a tool missing from the unit's PATH must make a run fail.

load lib/e2e

setup_file() {
	E2E_NOLOCALBUILD=0 e2e_setup_suite a b:nonflake p:prebuilt s:selfupdate
	export A B P S
	A=$(sys a)
	B=$(sys b)
	P=$(sys p)
	S=$(sys s)
	e2e_deploy_or_fail
}

teardown_file() {
	e2e_teardown_suite
}

setup() {
	local name
	for name in $E2E_SYSTEMS; do e2e_clear_hooks "$name"; done
	rm -f "$E2E_FLEET/hosts/$A/health-check" "$E2E_FLEET/hosts/$A/health.conf"
	e2e_listening || e2e_start_sshd
}

# probe NAME: what a script sees when the machine's unit runs it: its
# environment, one NAME=VALUE a line (without PWD, which the shell sets).
probe() {
	printf '%s\n' 'env | grep -v "^PWD=" | sort' > "$BATS_TEST_TMPDIR/probe.sh"
	e2e_machine "$1" "$BATS_TEST_TMPDIR/probe.sh"
}

@test "the unit's environment: NixOS's NIX_PATH, HOME, Nix's settings, and its packages on PATH" {
	run -0 e2e_unit "$A" 'environments."bento-upgrade"'
	assert_eq "$(jq -c 'keys' <<< "$output")" '["HOME","NIX_CONFIG","NIX_PATH","PATH"]' "variables"
	assert_eq "$(jq -r .NIX_PATH <<< "$output")" "$(e2e_nixos_nix_path)" "NIX_PATH"
	assert_contains "$(jq -r .PATH <<< "$output")" "$E2E_MACHINES/$A/pkgs/openssh/bin:"
	assert_contains "$(jq -r .PATH <<< "$output")" "$E2E_MACHINES/$A/pkgs/systemd/bin:"
	run -0 e2e_unit "$A" 'config.systemd.services."bento-upgrade".serviceConfig.ExecStart'
	assert_eq "$output" '"/bin/sh /var/bento/update.sh"' "ExecStart"
}

@test "a script run on a machine sees the unit's environment, nothing more" {
	run -0 probe "$A"
	assert_eq "$output" "$(e2e_unit "$A" 'environments."bento-upgrade"' | jq -r 'to_entries[] | "\(.key)=\(.value)"' | sort)" "environment"
	assert_not_contains "$output" "USER="
	assert_not_contains "$output" "/usr/bin"
}

@test "update runs only what the timer runs: a machine without /var/bento/update.sh cannot update" {
	run -1 e2e_machine "$A"
	assert_contains "$output" "$A has no /var/bento/update.sh, which its bento-upgrade unit runs"
	assert_eq "$(e2e_logs "$A")" "" "logs on the server"
}

@test "a flake machine: bootstrap.sh, then updates as its unit" {
	run -0 e2e_machine "$A" bootstrap
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	e2e_new_revision "$A"
	e2e_deploy "$A"
	expected=$(e2e_expected "$A")
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $expected"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$expected" "system profile"
	assert_contains "$(e2e_record "$A")" "nixos-rebuild switch --flake /var/bento#$A"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" success)"
	assert_eq "$(e2e_status_state "$A")" up-to-date "bento status"
}

@test "a machine without flakes updates as its unit: it builds <nixpkgs/nixos> from NixOS's NIX_PATH" {
	run -0 e2e_machine "$B" bootstrap
	e2e_new_revision "$B"
	e2e_deploy "$B"
	run -0 e2e_machine "$B"
	assert_contains "$output" "switching to"
	assert_contains "$(e2e_record "$B")" "nixos-rebuild switch --no-flake -I nixos-config=/var/bento/configuration.nix"
	assert_match "$(e2e_profile "$B")" "^/nix/store/[0-9a-z]{32}-nixos-system-$B-24\\.05\$"
	assert_match "$(e2e_newest_log "$B")" "$(e2e_log_name_regex "$B" success)"
	assert_eq "$(e2e_status_state "$B")" up-to-date "bento status"
}

@test "without the unit's NIX_PATH, the machine without flakes could not build (the check above can fail)" {
	e2e_new_revision "$B"
	e2e_deploy "$B"
	profile=$(e2e_profile "$B")
	m=$E2E_MACHINES/$B
	e2e_unit_environment "$B" | tr '\0' '\n' | grep -v '^NIX_PATH=' | tr '\n' '\0' > "$m/unit.env.without"
	mv "$m/unit.env.without" "$m/unit.env"
	run -1 e2e_machine "$B"
	rm "$m/unit.env"
	assert_contains "$output" "the build failed"
	assert_contains "$output" "not found in the Nix search path"
	assert_eq "$(e2e_profile "$B")" "$profile" "system profile"
}

@test "a tool missing from the unit's PATH fails the run (the environment is all the machine has)" {
	e2e_new_revision "$A"
	e2e_deploy "$A"
	profile=$(e2e_profile "$A")
	m=$E2E_MACHINES/$A
	mv "$m/pkgs/openssh" "$m/pkgs/openssh.away"
	run -1 e2e_machine "$A"
	mv "$m/pkgs/openssh.away" "$m/pkgs/openssh"
	assert_contains "$output" "missing: sftp ssh; nothing was changed"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	# Back: the same publication now applies.
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
}

@test "the health gate as the unit runs it: the check runs, a passing one keeps the new system" {
	# shellcheck disable=SC2016 # run by the machine's health gate
	printf '%s\n' 'echo "e2e: healthy, says $(cat /run/current-system/configuration)"' > "$E2E_FLEET/hosts/$A/health-check"
	printf 'timeout=5\ngrace=0\n' > "$E2E_FLEET/hosts/$A/health.conf"
	e2e_new_revision "$A"
	e2e_deploy "$A"
	expected=$(e2e_expected "$A")
	run -0 e2e_machine "$A"
	assert_not_contains "$output" "not healthy"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$expected" "system profile"
	log=$(e2e_log_text "$A" _success.log.gz)
	assert_contains "$log" "e2e: healthy, says suite $E2E_ID, system $A, revision"
	assert_contains "$(e2e_record "$A")" "systemctl --failed"
	rm "$E2E_FLEET/hosts/$A/health-check" "$E2E_FLEET/hosts/$A/health.conf"
}

@test "the health gate as the unit runs it: a failing check rolls the machine back" {
	printf '%s\n' 'echo "e2e: the app does not answer"' 'exit 1' > "$E2E_FLEET/hosts/$A/health-check"
	printf 'timeout=5\ngrace=0\n' > "$E2E_FLEET/hosts/$A/health.conf"
	before=$(e2e_profile "$A")
	e2e_new_revision "$A"
	e2e_deploy "$A"
	run -1 e2e_machine "$A"
	assert_contains "$output" "the new system is not healthy (the health check failed"
	assert_eq "$(e2e_profile "$A")" "$before" "system profile after the rollback"
	assert_eq "$(e2e_current_system "$A")" "$before" "/run/current-system"
	assert_contains "$(e2e_log_text "$A" _rollback.log.gz)" "e2e: the app does not answer"
	rm "$E2E_FLEET/hosts/$A/health-check" "$E2E_FLEET/hosts/$A/health.conf"
}

@test "a rollback as the unit runs it: the server lost after the switch" {
	before=$(e2e_profile "$A")
	e2e_new_revision "$A"
	e2e_deploy "$A"
	e2e_stop_sshd_hook "$A" after-switch
	run -1 e2e_machine "$A"
	e2e_clear_hooks "$A"
	e2e_start_sshd
	assert_contains "$output" "unreachable after the switch: rolling back"
	assert_eq "$(e2e_profile "$A")" "$before" "system profile after the rollback"
	assert_eq "$(e2e_current_system "$A")" "$before" "/run/current-system"
	run -0 e2e_machine "$A"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" rollback)"
}

@test "a prebuilt machine switches as its unit: download, signatures checked, switch-to-configuration" {
	run -0 e2e_machine "$P" bootstrap
	e2e_bump_package "$P"
	e2e_new_revision "$P"
	e2e_deploy "$P"
	expected=$(e2e_expected "$P")
	e2e_clear_record "$P"
	run -0 e2e_machine "$P"
	assert_contains "$output" "switching to $expected"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	assert_eq "$(e2e_current_system "$P")" "/nix/store/$expected" "/run/current-system"
	record=$(e2e_record "$P")
	assert_not_contains "$record" "FORBIDDEN"
	assert_contains "$record" "systemd-run"
	assert_match "$(e2e_newest_log "$P")" "$(e2e_log_name_regex "$P" success)"
}

@test "a self-update as the unit runs it: the inputs updated, rebuilt, switched, autoupdate" {
	run -0 e2e_machine "$S" bootstrap
	printf '2\n' > "$E2E_INPUTS/$S/version"
	run -0 e2e_machine "$S"
	assert_contains "$output" "updating the flake inputs (SELF_UPDATE)"
	assert_eq "$(cat "$(e2e_profile "$S")/input")" 2 "input seen by the running system"
	assert_match "$(e2e_newest_log "$S")" "$(e2e_log_name_regex "$S" autoupdate)"
	assert_eq "$(e2e_status_state "$S")" auto-updated "bento status"
}
