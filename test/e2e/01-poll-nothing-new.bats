#!/usr/bin/env bats
# A poll when nothing new was published (docs/protocol.md §6 steps 1–2): one short SFTP
# session, "no update required", exit 0, nothing downloaded or changed.

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

# Sets the access times of the published files two days back: with relatime
# (or strictatime) reading one of them moves its atime to now.
age_published_atimes() {
	find -L "$E2E_CHROOT/$A/config/" -type f -exec touch -a -d '2 days ago' {} +
}

published_files_read_since_aged() {
	find -L "$E2E_CHROOT/$A/config/" -type f -amin -60 | grep -c . || true
}

@test "nothing new: 'no update required', exit 0, no download, no build, nothing changed" {
	age_published_atimes
	before=$(e2e_machine_snapshot "$A")
	logs=$(e2e_logs "$A")
	sessions=$(e2e_accepted)
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_not_contains "$output" "downloading"

	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
	assert_eq "$(e2e_logs "$A")" "$logs" "logs on the server"
	[ ! -e "$E2E_MACHINES/$A/var-bento/.bento/incoming" ] || fail "something was downloaded into .bento/incoming"
	# No published file was read (their access times did not move).
	assert_eq "$(published_files_read_since_aged)" 0 "published files read"
	assert_eq "$(($(e2e_accepted) - sessions))" 1 "SSH sessions"
	# The connection master was closed: no process of the machine is left.
	assert_eq "$(e2e_leftover_processes)" "" "processes left behind"
}

@test "the access-time probe of the previous test can see a download" {
	# Guards the 'no published file was read' assertion: a real download moves the atimes.
	age_published_atimes
	e2e_new_revision "$A"
	e2e_deploy
	age_published_atimes
	run -0 e2e_machine "$A"
	assert_contains "$output" "a new configuration is available"
	[ "$(published_files_read_since_aged)" -gt 0 ] || fail "a download left the access times alone: the probe cannot work on this file system"
}

@test "polls stay quiet: three more runs, no new log" {
	logs=$(e2e_logs "$A")
	e2e_clear_record "$A"
	for _ in 1 2 3; do
		run -0 e2e_machine "$A"
		assert_contains "$output" "no update required"
	done
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_logs "$A")" "$logs" "logs on the server"
}
