#!/usr/bin/env bats
# A server that answers but will not take a log (docs/protocol.md §5, §6):
# CHROOT_DIR on a small tmpfs that another machine fills between a switch and
# the upload, and a logs/ that is not writable. Only a machine that cannot
# reach the server rolls back: here the good configuration stays, the log
# waits on the machine and arrives whole once the server takes it again;
# nothing half written is ever counted. And what the machine refuses from a
# server that answers: an empty or broken last_change_date, a configuration
# holding files its manifest does not list.

load lib/e2e

setup_file() {
	# 4 MiB is enough for the published configurations, and soon filled.
	E2E_CHROOT_TMPFS=4m e2e_setup_suite a b
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail
	for name in "$A" "$B"; do
		e2e_first_update_or_fail "$name"
	done
}

teardown_file() {
	e2e_teardown_suite
}

setup() {
	e2e_clear_hooks "$A"
}

# Whatever a test did to the server, undone even when it failed: the disk
# filled, logs/ taken from the machine, sshd stopped.
teardown() {
	rm -f "$E2E_CHROOT/$B/logs/fill"
	chown "$A" "$E2E_CHROOT/$A/logs"
	e2e_listening || e2e_start_sshd
}

pending_logs() {
	ls "$E2E_MACHINES/$A/var-bento/.bento/pending"
}

# A hook of machine a's stand-ins that has machine b fill the server's disk:
# one put into b's own logs/, with b's key (it fails when the disk is full).
fill_disk_hook() {
	local b=$E2E_MACHINES/$B
	e2e_hook "$A" "$1" "head -c 8M /dev/zero > /tmp/bento-e2e-fill-$E2E_ID
echo 'put /tmp/bento-e2e-fill-$E2E_ID logs/fill' | sftp -b - -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i '$b/ssh/id_ed25519' -o UserKnownHostsFile='$b/ssh/known_hosts' -P $E2E_PORT $B@127.0.0.1 > /dev/null 2>&1 || true
rm -f /tmp/bento-e2e-fill-$E2E_ID"
}

@test "CHROOT_DIR on its own nosuid,nodev,noexec file system: setup-debian.sh does not warn" {
	assert_not_contains "$(cat "$E2E_STATE/setup-debian.out")" "warning: $E2E_CHROOT"
}

@test "the server's disk filled by another machine between the switch and the upload: no rollback, the log waits" {
	previous=$(e2e_profile "$A")
	e2e_new_revision "$A"
	e2e_deploy
	new=/nix/store/$(e2e_expected "$A")
	fill_disk_hook after-switch
	logs=$(e2e_logs "$A")
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(basename "$new")"
	assert_contains "$output" "the server answers but did not take the log"
	assert_not_contains "$output" "rolling back"
	assert_not_contains "$(e2e_record "$A")" "--rollback"
	assert_eq "$(e2e_profile "$A")" "$new" "system profile"
	assert_eq "$(e2e_current_system "$A")" "$new" "/run/current-system"
	[ "$previous" != "$new" ] || fail "the revision did not change the system"
	# The disk is full, and what a's upload left is not a log.
	[ "$(df --output=avail -k "$E2E_CHROOT" | tail -n 1 | tr -d ' ')" -lt 64 ] || fail "CHROOT_DIR is not full: $(df -k "$E2E_CHROOT")"
	assert_eq "$(e2e_logs "$A" | grep -v '^\.')" "$logs" "logs on the server"
	pending=$(pending_logs)
	assert_match "$pending" "$(e2e_log_name_regex "$A" success)"
	run -0 e2e_status_state "$A"
	assert_eq "$output" rebuild-pending "bento status"

	# The next poll, the disk still full: still nothing changes, still kept.
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_contains "$output" "did not take the logs of earlier runs"
	assert_eq "$(pending_logs)" "$pending" "logs kept on the machine"

	# Room again (the administrator deletes b's file): the log arrives whole,
	# and the good configuration was never given up.
	rm -f "$E2E_CHROOT/$B/logs/fill" "$E2E_CHROOT/$A"/logs/.*.tmp-*
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	gzip -t "$E2E_CHROOT/$A/logs/$pending"
	assert_eq "$(e2e_profile "$A")" "$new" "system profile"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}

@test "logs/ not writable (owned by root): no rollback, the log arrives once it is writable again" {
	e2e_new_revision "$A"
	e2e_deploy
	new=/nix/store/$(e2e_expected "$A")
	chown root "$E2E_CHROOT/$A/logs"
	e2e_clear_record "$A"

	run -0 e2e_machine "$A"
	chown "$A" "$E2E_CHROOT/$A/logs"
	assert_contains "$output" "the server answers but did not take the log"
	assert_contains "$output" "Permission denied"
	assert_not_contains "$output" "rolling back"
	assert_not_contains "$(e2e_record "$A")" "--rollback"
	assert_eq "$(e2e_profile "$A")" "$new" "system profile"
	pending=$(pending_logs)
	assert_match "$pending" "$(e2e_log_name_regex "$A" success)"

	run -0 e2e_machine "$A"
	assert_eq "$(pending_logs)" "" "logs left on the machine"
	[ -f "$E2E_CHROOT/$A/logs/$pending" ] || fail "$pending did not reach the server"
	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}

@test "the server unreachable after the switch still rolls back (the probe does not hide a lost server)" {
	previous=$(e2e_profile "$A")
	e2e_new_revision "$A"
	e2e_deploy
	e2e_stop_sshd_hook "$A" after-switch
	run -1 e2e_machine "$A"
	assert_contains "$output" "unreachable after the switch: rolling back"
	assert_eq "$(e2e_profile "$A")" "$previous" "system profile"
	e2e_start_sshd
	run -0 e2e_machine "$A"
	run -0 e2e_status_state "$A"
	assert_eq "$output" rollbacked "bento status"
}

@test "an empty last_change_date: says so (not 'cannot reach'), non-zero exit, nothing changed" {
	stamp=$E2E_CHROOT/$A/last_change_date
	cp -p "$stamp" "$BATS_TEST_TMPDIR/stamp"
	: > "$stamp"
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"
	run -1 e2e_machine "$A"
	assert_contains "$output" "the bento server's last_change_date for $A is empty"
	assert_not_contains "$output" "cannot reach"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"

	printf 'not a digest\n' > "$stamp"
	run -1 e2e_machine "$A"
	assert_contains "$output" "the bento server's last_change_date for $A does not start with the digest of a manifest"
	assert_not_contains "$output" "cannot reach"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
	cp -p "$BATS_TEST_TMPDIR/stamp" "$stamp"
}

@test "a published file the manifest does not list: the download is not used, then the clean one is" {
	e2e_new_revision "$A"
	e2e_deploy
	printf 'echo owned\n' > "$E2E_CHROOT/$A/config/unlisted.sh"
	mkdir "$E2E_CHROOT/$A/config/extra"
	printf 'x\n' > "$E2E_CHROOT/$A/config/extra/file"
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "holds files its manifest does not list; it is not used"
	assert_contains "$output" "./unlisted.sh"
	assert_contains "$output" "./extra/file"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
	[ ! -e "$E2E_MACHINES/$A/var-bento/unlisted.sh" ] || fail "the unlisted file was installed"

	rm -r "$E2E_CHROOT/$A/config/unlisted.sh" "$E2E_CHROOT/$A/config/extra"
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	[ ! -e "$E2E_MACHINES/$A/var-bento/unlisted.sh" ] || fail "the unlisted file was installed"
}
