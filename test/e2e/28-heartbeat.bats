#!/usr/bin/env bats
# The heartbeat (docs/protocol.md §5a): every poll writes logs/heartbeat in
# the one session it opens anyway, after the queued logs, and the report
# after an update writes it again once the machine switched. Its text is
# the machine as it is (protocol, configuration, running, booted,
# reboot-pending), read back with the server's own parser; it replaces
# nothing but itself, through the SFTP allow list (§9); and a heartbeat the
# server does not take (logs/ not writable, its disk full) never fails a
# poll. CHROOT_DIR is a small tmpfs, so that machine b can fill it.

load lib/e2e

setup_file() {
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

# Whatever a test did to the server, undone even when it failed.
teardown() {
	rm -f "$E2E_CHROOT/$B/logs/fill"
	chown "$A" "$E2E_CHROOT/$A/logs"
}

# NAME's logs/ on the server but its heartbeat: every entry's name, type,
# size and mtime.
other_entries() {
	find "$E2E_CHROOT/$1/logs" -mindepth 1 ! -name heartbeat -printf '%f %y %s %T@\n' | sort
}

# What NAME's chroot publishes (all but logs/), with sizes and mtimes.
published() {
	find "$E2E_CHROOT/$1" -path "$E2E_CHROOT/$1/logs" -prune -o -printf '%p %y %s %T@ %l\n' | sort
}

# The store path basename a link of machine NAME's /run resolves to.
run_link() {
	basename "$(readlink -f "$E2E_MACHINES/$1/run/$2")"
}

# The heartbeat's text after its first line, with a final x so that the
# command substitution keeps its last newlines (the empty line ending it).
after_first_line() {
	tail -n +2 "$(e2e_heartbeat "$1")"
	printf x
}

# The heartbeat of NAME as the server reads it (src/protocol/heartbeat.ts), JSON.
parsed_heartbeat() {
	node --input-type=module -e "
		import { readFileSync } from 'node:fs';
		import { parseHeartbeat } from '$E2E_REPO/dist/protocol/heartbeat.js';
		console.log(JSON.stringify(parseHeartbeat(readFileSync(process.argv[1], 'utf8'))));
	" "$(e2e_heartbeat "$1")"
}

# The configuration the machine last applied (its .bento/state, one line).
applied() {
	head -n 1 "$E2E_MACHINES/$1/var-bento/.bento/state"
}

# As if the machine had rebooted into its current system.
boot_into_current() {
	ln -sfn "$(e2e_profile "$1")" "$E2E_MACHINES/$1/run/booted-system"
}

@test "an idle poll writes logs/heartbeat, the machine as it is (no /run/booted-system: no booted, no reboot-pending), in its one session, and nothing else changes on the server" {
	hb=$(e2e_heartbeat "$A")
	rm -f "$hb"
	[ ! -e "$E2E_MACHINES/$A/run/booted-system" ] || fail "the machine has a booted-system already"
	own=$(other_entries "$A")
	other=$(other_entries "$B")
	chroot=$(published "$A")
	sessions=$(e2e_accepted)

	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(($(e2e_accepted) - sessions))" 1 "SSH sessions"

	[ -f "$hb" ] || fail "the poll wrote no logs/heartbeat"
	assert_match "$(head -n 1 "$hb")" "^bento heartbeat of $A on [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC\$"
	assert_eq "$(after_first_line "$A")" "$(printf 'protocol: %s\nconfiguration: %s\nrunning: %s\n\nx' "$(e2e_protocol_version)" "$(applied "$A")" "$(run_link "$A" current-system)")" "the heartbeat after its first line"
	# The configuration is the one published, the running system the one states.txt expects.
	assert_eq "$(applied "$A")" "$(cat "$E2E_CHROOT/$A/last_change_date")" "configuration"
	assert_eq "$(run_link "$A" current-system)" "$(e2e_expected "$A")" "running"
	assert_eq "$(parsed_heartbeat "$A")" "{\"protocol\":$(e2e_protocol_version),\"configuration\":\"$(cut -d ' ' -f 1 "$E2E_CHROOT/$A/last_change_date")\",\"running\":\"$(e2e_expected "$A")\"}" "the heartbeat as the server reads it"
	assert_eq "$(stat -c '%U %a' "$hb")" "$A 644" "owner and mode of the heartbeat"
	# Written through the generated Match block, its allow list of requests (docs/protocol.md §9):
	# internal-sftp -p answers put's open, write and close and the rename, posix-rename.
	assert_contains "$(cat "$E2E_SERVER/sshd_config")" "ForceCommand internal-sftp -p open,close,read,write,"

	# Nothing else: no temporary left, every other entry as it was, here and in b's logs/, and what is published.
	assert_eq "$(other_entries "$A")" "$own" "the other entries of logs/"
	assert_eq "$(other_entries "$B")" "$other" "b's logs/"
	assert_eq "$(published "$A")" "$chroot" "last_change_date and config"
}

@test "a second idle poll: the heartbeat's mtime moves, nothing else changes" {
	hb=$(e2e_heartbeat "$A")
	[ -f "$hb" ] || fail "no heartbeat from the previous test"
	inode=$(stat -c %i "$hb")
	touch "$BATS_TEST_TMPDIR/before"
	own=$(other_entries "$A")
	other=$(other_entries "$B")
	chroot=$(published "$A")

	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	[ -n "$(find "$hb" -newer "$BATS_TEST_TMPDIR/before")" ] || fail "the heartbeat's mtime did not move"
	# Replaced by a rename, never written in place.
	[ "$(stat -c %i "$hb")" != "$inode" ] || fail "the heartbeat was written in place"
	assert_eq "$(other_entries "$A")" "$own" "the other entries of logs/"
	assert_eq "$(other_entries "$B")" "$other" "b's logs/"
	assert_eq "$(published "$A")" "$chroot" "last_change_date and config"
}

@test "booted into its current system: booted named, reboot-pending: no" {
	boot_into_current "$A"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(after_first_line "$A")" "$(printf 'protocol: %s\nconfiguration: %s\nrunning: %s\nbooted: %s\nreboot-pending: no\n\nx' "$(e2e_protocol_version)" "$(applied "$A")" "$(e2e_expected "$A")" "$(e2e_expected "$A")")" "the heartbeat after its first line"
	assert_eq "$(parsed_heartbeat "$A" | jq -c '[.booted, .rebootPending]')" "[\"$(e2e_expected "$A")\",false]" "booted and reboot-pending as the server reads them"
}

@test "an update to a new kernel: after the switch the heartbeat names the new system, written after its log, and reboot-pending: yes" {
	booted=$(run_link "$A" booted-system)
	printf '6.2.0\n' > "$E2E_FLEET/hosts/$A/kernel-version"
	e2e_new_revision "$A"
	e2e_deploy
	new=$(e2e_expected "$A")
	[ "$new" != "$booted" ] || fail "the revision did not change the system"

	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $new"
	log=$E2E_CHROOT/$A/logs/$(e2e_newest_log "$A" _success.log.gz)
	assert_match "${log##*/}" "_${new}_success\\.log\\.gz\$"
	hb=$(e2e_heartbeat "$A")
	assert_eq "$(after_first_line "$A")" "$(printf 'protocol: %s\nconfiguration: %s\nrunning: %s\nbooted: %s\nreboot-pending: yes\n\nx' "$(e2e_protocol_version)" "$(cat "$E2E_CHROOT/$A/last_change_date")" "$new" "$booted")" "the heartbeat after its first line"
	assert_eq "$(parsed_heartbeat "$A" | jq -c '[.running, .booted, .rebootPending]')" "[\"$new\",\"$booted\",true]" "the heartbeat as the server reads it"
	# Written in the session that uploaded the log, after it.
	[ -z "$(find "$log" -newer "$hb")" ] || fail "the log is newer than the heartbeat: $(stat -c '%y %n' "$log" "$hb")"

	# Still pending on the next poll, until the machine boots the new kernel.
	run -0 e2e_machine "$A"
	assert_contains "$(cat "$hb")" $'\nreboot-pending: yes'
	boot_into_current "$A"
	run -0 e2e_machine "$A"
	assert_contains "$(cat "$hb")" $'\nreboot-pending: no'
}

@test "logs/ not writable: the poll succeeds all the same, says nothing of it, and leaves the heartbeat and logs/ as they were" {
	hb=$(e2e_heartbeat "$A")
	before=$(cat "$hb")
	own=$(other_entries "$A")
	touch -d '1 hour ago' "$hb"
	mtime=$(stat -c %Y "$hb")
	chown root "$E2E_CHROOT/$A/logs"

	run -0 e2e_machine "$A"
	assert_eq "$output" "bento: no update required" "the poll's output"
	assert_eq "$(stat -c %Y "$hb")" "$mtime" "the heartbeat's mtime"
	assert_eq "$(cat "$hb")" "$before" "the heartbeat"
	assert_eq "$(other_entries "$A")" "$own" "the other entries of logs/"
}

@test "the server's disk full: the poll succeeds all the same; the heartbeat left empty (the write failed) still says when; whole again once there is room" {
	hb=$(e2e_heartbeat "$A")
	own=$(other_entries "$A")
	# b fills CHROOT_DIR with one upload into its own logs/.
	head -c 8M /dev/zero > "$BATS_TEST_TMPDIR/fill"
	run sftp -b - -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$E2E_MACHINES/$B/ssh/id_ed25519" \
		-o UserKnownHostsFile="$E2E_MACHINES/$B/ssh/known_hosts" -P "$E2E_PORT" "$B@127.0.0.1" <<< "put $BATS_TEST_TMPDIR/fill logs/fill"
	[ "$(df --output=avail -k "$E2E_CHROOT" | tail -n 1 | tr -d ' ')" -lt 64 ] || fail "CHROOT_DIR is not full: $(df -k "$E2E_CHROOT")"
	touch "$BATS_TEST_TMPDIR/before"

	run -0 e2e_machine "$A"
	assert_eq "$output" "bento: no update required" "the poll's output"
	[ -n "$(find "$hb" -newer "$BATS_TEST_TMPDIR/before")" ] || fail "the heartbeat's mtime did not move"
	assert_eq "$(stat -c %s "$hb")" 0 "the heartbeat's size (its write failed, its rename did not)"
	assert_eq "$(parsed_heartbeat "$A")" "{}" "an empty heartbeat as the server reads it"
	assert_eq "$(other_entries "$A")" "$own" "the other entries of logs/ (no temporary left)"

	rm "$E2E_CHROOT/$B/logs/fill"
	run -0 e2e_machine "$A"
	assert_eq "$(parsed_heartbeat "$A" | jq -r .running)" "$(e2e_expected "$A")" "the heartbeat once there is room"
}
