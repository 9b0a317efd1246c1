#!/usr/bin/env bats
# A full disk on the machine (docs/protocol.md §6): /var/bento on a small
# tmpfs and a big published file. A run that fails for lack of space frees
# what it wrote (the download, and what it staged from it), never the
# configuration installed before it nor the update.sh the timer runs, queues
# a short log that says so (once per configuration), and does not remember
# the configuration as tried: once there is room, the next run applies it.

load lib/e2e

setup_file() {
	e2e_setup_suite a
	export A
	A=$(sys a)
	e2e_deploy_or_fail
	e2e_machine_tmpfs "$A" 40m
	e2e_first_update_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

var_bento=
setup() {
	var_bento=$E2E_MACHINES/$A/var-bento
}

# KiB used on the machine's /var/bento.
used_kib() {
	df --output=used -k "$var_bento" | tail -n 1 | tr -d ' '
}

# big_file SIZE: a file of random (incompressible) bytes in the host
# directory, then a new revision: published with the next deploy.
big_file() {
	rm -f "$E2E_FLEET/hosts/$A/big.bin"
	head -c "$1" /dev/urandom > "$E2E_FLEET/hosts/$A/big.bin"
	e2e_new_revision "$A"
	e2e_deploy > /dev/null
}

@test "a 50 MB file does not even download: the partial copy is removed, a short log says so" {
	profile=$(e2e_profile "$A")
	installed=$(e2e_installed_configuration "$A")
	used_before=$(used_kib)
	big_file 50M
	logs=$(e2e_log_count "$A")
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "no space left on this machine while downloading the configuration"
	assert_contains "$output" "tried again on the next run"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	[ ! -e "$var_bento/.bento/incoming" ] || fail "the partial download is still there"
	# The configuration installed before, and the update.sh the timer runs, are untouched.
	assert_eq "$(e2e_installed_configuration "$A")" "$installed" "the installed configuration"
	# Room is back to what it was.
	[ "$(used_kib)" -le "$((used_before + 100))" ] || fail "/var/bento still uses $(used_kib) KiB (before: $used_before)"
	# The short log reached the server: failing.
	assert_eq "$(e2e_log_count "$A")" "$((logs + 1))" "logs on the server"
	failure=$(e2e_newest_log "$A")
	assert_match "$failure" "$(e2e_log_name_regex "$A" failure)"
	text=$(e2e_log_text "$A" _failure.log.gz)
	assert_contains "$text" "No space left on this machine while downloading the configuration"
	assert_contains "$text" "No space left on device"
	run -2 bento status --json
	assert_eq "$(e2e_status_state "$A")" failing "bento status"
	[ ! -e "$var_bento/.bento/state" ] || fail "the configuration was remembered as tried"

	# The next run (what the timer runs: the update.sh still there) tries
	# again, fails the same way, and does not report it twice.
	run -1 e2e_machine "$A"
	assert_contains "$output" "no space left on this machine while downloading the configuration"
	assert_eq "$(e2e_log_count "$A")" "$((logs + 1))" "logs on the server"
	[ "$(used_kib)" -le "$((used_before + 100))" ] || fail "/var/bento still uses $(used_kib) KiB"
	assert_eq "$(e2e_installed_configuration "$A")" "$installed" "the installed configuration"
}

@test "a 30 MB file downloads but git cannot store it: everything it wrote is removed, a short log says so" {
	installed=$(e2e_installed_configuration "$A")
	used_before=$(used_kib)
	big_file 30M
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "installing the configuration into /var/bento failed"
	assert_contains "$output" "no space left on this machine while installing the configuration"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	# The download and its git tree are gone; the configuration installed
	# before, its .git and update.sh, are as they were.
	[ ! -e "$var_bento/.bento/incoming" ] || fail "the download is still there"
	assert_eq "$(e2e_installed_configuration "$A")" "$installed" "the installed configuration"
	[ "$(used_kib)" -le "$((used_before + 100))" ] || fail "/var/bento still uses $(used_kib) KiB (before: $used_before)"
	# Delivered (in the same minute as the last one, it may have replaced it:
	# log names have the minute and the system, both the same here).
	assert_eq "$(ls "$var_bento/.bento/pending")" "" "logs left on the machine"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" failure)"
	assert_contains "$(e2e_log_text "$A" _failure.log.gz)" "No space left on this machine while installing the configuration"
	assert_eq "$(e2e_status_state "$A")" failing "bento status"
}

@test "room again: the next run applies the configuration that did not fit" {
	mount -o remount,size=200m "$var_bento"
	e2e_clear_record "$A"
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	cmp "$E2E_FLEET/hosts/$A/big.bin" "$var_bento/big.bin"
	assert_match "$(e2e_newest_log "$A")" "$(e2e_log_name_regex "$A" success)"
	# A failure and then a success since the configuration was published.
	assert_eq "$(e2e_status_state "$A")" extra-logs "bento status"
	rm "$E2E_FLEET/hosts/$A/big.bin"
}
