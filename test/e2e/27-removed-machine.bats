#!/usr/bin/env bats
# A machine that leaves the fleet (README, "Removing a machine";
# docs/protocol.md §2): once its host directory is gone, `bento deploy` says
# so and takes away what it had published (nothing left to download), status
# no longer shows it, and the regenerated setup-debian.sh removes its key and
# locks its account, so the real sshd refuses it; its logs stay. Put back,
# it logs in and updates again.

load lib/e2e

setup_file() {
	e2e_setup_suite a b
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
	e2e_first_update_or_fail "$B"
}

teardown_file() {
	e2e_teardown_suite
}

# sftp_as NAME COMMAND...: one sftp batch session with NAME's own key.
sftp_as() {
	local name=$1 m=$E2E_MACHINES/$1
	shift
	printf '%s\n' "$@" | sftp -b - -F /dev/null -o LogLevel=ERROR -o BatchMode=yes -o IdentitiesOnly=yes \
		-i "$m/ssh/id_ed25519" -o "UserKnownHostsFile=$m/ssh/known_hosts" -o StrictHostKeyChecking=yes \
		-P "$E2E_PORT" "$name@127.0.0.1"
}

# The regenerated server setup, run as e2e_setup_server runs it.
setup_debian() {
	BENTO_AUTHORIZED_KEYS_DIR=$E2E_SERVER/authorized_keys.d BENTO_SSHD_CONFIG_D=$E2E_SERVER/sshd_config.d BENTO_NO_RELOAD=1 \
		BENTO_PRUNE_LOGS=$E2E_SERVER/bento-prune-logs BENTO_SYSTEMD_DIR=$E2E_SERVER/systemd \
		sh "$E2E_FLEET/generated/server/setup-debian.sh"
}

@test "a removed machine: deploy takes away what it published and says so, status leaves it out, setup-debian.sh takes its login away; its logs stay" {
	local logs_before snapshot
	logs_before=$(e2e_logs "$B")
	[ -n "$logs_before" ] || fail "$B has no log to keep"
	run -0 sftp_as "$B" "ls /"

	# The admin removes the host directory (its key stays in keys/: forgotten).
	mv "$E2E_FLEET/hosts/$B" "$E2E_STATE/host-b"
	run -0 bento deploy
	assert_contains "$output" "$B: left the fleet (no system of hosts/ has this name): its published configuration and states.txt line are removed, its logs kept in $E2E_CHROOT/$B/logs"
	assert_contains "$output" "deploy: 0 published, 1 unchanged, 0 failed, 1 removed from the fleet"
	for entry in last_change_date config; do
		[ ! -e "$E2E_CHROOT/$B/$entry" ] || fail "$B/$entry is still published"
	done
	[ -z "$(find "$E2E_CHROOT/$B" -maxdepth 1 -name '.config-*')" ] || fail "a version directory of $B is left: $(ls -a "$E2E_CHROOT/$B")"
	[ -z "$(e2e_expected "$B")" ] || fail "states.txt still names $B"
	assert_eq "$(e2e_logs "$B")" "$logs_before" "$B's logs"

	# Status: the removed machine is no row any more, and is named under the table.
	run -0 bento status --json
	assert_eq "$(jq -r '.[].name' <<< "$output")" "$A" "systems in bento status --json"
	run -0 bento status
	assert_contains "$output" "removed from the fleet (their logs are kept): $B"
	if grep -q "^$B " <<< "$output"; then fail "$B still has a row:" "$output"; fi

	# Its key still works until the server setup runs again, but nothing is
	# published for it: its update changes nothing on it.
	snapshot=$(e2e_machine_snapshot "$B")
	run e2e_machine "$B"
	[ "$status" -ne 0 ] || fail "the update of a removed machine succeeded:" "$output"
	assert_eq "$(e2e_machine_snapshot "$B")" "$snapshot" "the removed machine after its update"

	run -0 setup_debian
	assert_contains "$output" "setup-debian.sh: $B is no longer in the fleet: its key is removed and its account locked (its logs stay in $E2E_CHROOT/$B/logs)"
	assert_not_contains "$output" "$A is no longer in the fleet"
	[ ! -e "$E2E_SERVER/authorized_keys.d/$B" ] || fail "$B's key is still authorized"

	# The real sshd refuses its key now; the other machine still logs in and updates.
	run sftp_as "$B" "ls /"
	[ "$status" -ne 0 ] || fail "$B still logs in:" "$output"
	assert_contains "$output" "Permission denied"
	run -0 sftp_as "$A" "ls /"
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_logs "$B")" "$logs_before" "$B's logs"
}

@test "the key alone is not enough: the locked account is refused even with its key put back by hand" {
	cp "$E2E_FLEET/keys/$B.pub" "$E2E_SERVER/authorized_keys.d/$B"
	run sftp_as "$B" "ls /"
	rm "$E2E_SERVER/authorized_keys.d/$B"
	[ "$status" -ne 0 ] || fail "the locked account logs in with its key:" "$output"
	# OpenSSH (allowed_user, without PAM) checks the expiry date first, then the lock.
	grep -E -q "Account $B has expired|User $B not allowed because account is locked" "$E2E_SERVER/sshd.log" ||
		fail "sshd did not refuse the locked account:" "$(tail -n 5 "$E2E_SERVER/sshd.log")"
}

@test "back in the fleet: setup-debian.sh unlocks it, deploy publishes it, it updates and shows again" {
	mv "$E2E_STATE/host-b" "$E2E_FLEET/hosts/$B"
	run -0 bento generate
	run -0 setup_debian
	assert_not_contains "$output" "is no longer in the fleet"
	[ -s "$E2E_SERVER/authorized_keys.d/$B" ] || fail "$B's key is not authorized again"
	run -0 bento deploy
	assert_contains "$output" "deploy: 1 published, 1 unchanged, 0 failed"
	[ ! -e "$E2E_CHROOT/$B/removed" ] || fail "$B is still marked removed"
	run -0 e2e_machine "$B"
	run -0 bento status --json
	assert_eq "$(e2e_status_state "$B")" up-to-date "bento status"
}
