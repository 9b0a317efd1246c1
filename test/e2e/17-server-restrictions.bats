#!/usr/bin/env bats
# What a machine may do in its own logs/ (docs/protocol.md §9): the SFTP
# server answers only the requests a bento client needs (internal-sftp -p,
# an allow list) with a umask that strips execute bits (-u 0133); the prune
# (prune-logs.sh, run every minute by a timer) deletes what sshd cannot stop,
# a 300 MB upload for one; bento status never reads an oversize log and a
# stray file never hides a failure. Tried with the machine's own key against
# the real sshd, with crafted requests (lib/sftp-requests.mjs) and the sftp
# command line.

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

# The machine's ssh options, for a session of its own (not through update.sh).
machine_ssh_options() {
	local m=$E2E_MACHINES/$A
	printf '%s\n' -i "$m/ssh/id_ed25519" -o "UserKnownHostsFile=$m/ssh/known_hosts" -o StrictHostKeyChecking=yes
}

# sftp_batch_as_a COMMAND...: one sftp batch session as machine a.
sftp_batch_as_a() {
	local options
	mapfile -t options < <(machine_ssh_options)
	printf '%s\n' "$@" | sftp -b - -F /dev/null -o LogLevel=ERROR -o BatchMode=yes -o IdentitiesOnly=yes "${options[@]}" -P "$E2E_PORT" "$A@127.0.0.1"
}

# The prune as its systemd timer runs it (setup-debian.sh installed it).
prune() {
	sh "$E2E_SERVER/bento-prune-logs"
}

@test "every SFTP request a client does not need is refused; those it needs are answered" {
	local options
	mapfile -t options < <(machine_ssh_options)
	logs=$E2E_CHROOT/$A/logs
	run -0 node "$E2E_LIB/sftp-requests.mjs" "${options[@]}" -p "$E2E_PORT" "$A@127.0.0.1"
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/requests.out"
	for request in realpath expand-path limits stat lstat opendir readdir open-read read fstat close open-write write posix-rename rename open-mode-6755; do
		grep -qx "$request ok" "$BATS_TEST_TMPDIR/requests.out" || fail "$request was not answered:" "$output"
	done
	for request in setstat setstat-logs lsetstat fsetstat fsync fstatvfs copy-data symlink hardlink mkdir rmdir remove readlink statvfs home-directory users-groups-by-id; do
		grep -qx "$request refused 3 Permission denied" "$BATS_TEST_TMPDIR/requests.out" || fail "$request was not refused:" "$output"
	done
	# Nothing of it happened on the server.
	[ ! -e "$logs/rootlnk" ] && [ ! -e "$logs/dir" ] && [ ! -e "$logs/hardlink" ] || fail "a refused request changed logs/:" "$(ls -la "$logs")"
	assert_eq "$(stat -c '%a %U' "$logs")" "755 $A" "logs/"
	assert_eq "$(stat -c '%a' "$logs/probe-renamed")" 644 "mode of the uploaded file"
	# The open that asked for 06755: no execute bit survives the umask, so the
	# file cannot be run, set-ID or not.
	mode=$(stat -c '%a' "$logs/setuid-probe")
	[ $((0$mode & 0111)) -eq 0 ] || fail "logs/setuid-probe is executable: mode $mode"
	# The prune deletes the set-ID file (a client never makes one) and keeps the rest.
	run -0 prune
	assert_contains "$output" "prune-logs: deleted $logs/setuid-probe"
	[ ! -e "$logs/setuid-probe" ] || fail "the prune left logs/setuid-probe"
	[ -e "$logs/probe-renamed" ] || fail "the prune deleted an ordinary file"
	rm -f "$logs/probe-renamed"
}

@test "the sftp command line: chmod, chown, symlink, ln, mkdir, rm and df are refused in logs/" {
	printf 'payload\n' > "$BATS_TEST_TMPDIR/payload"
	chmod 0755 "$BATS_TEST_TMPDIR/payload"
	run -0 sftp_batch_as_a "put -p $BATS_TEST_TMPDIR/payload logs/binary"
	logs=$E2E_CHROOT/$A/logs
	# put -p asked for 0755: the umask made it 0644.
	assert_eq "$(stat -c '%a' "$logs/binary")" 644 "mode of logs/binary"
	for command in "chmod 6755 logs/binary" "chmod 777 logs" "chown 0 logs/binary" "chgrp 0 logs/binary" \
		"symlink / logs/rootlnk" "ln logs/binary logs/hard" "ln -s / logs/soft" "mkdir logs/dir" "rm logs/binary" \
		"rmdir logs" "df /"; do
		if sftp_batch_as_a "$command" > "$BATS_TEST_TMPDIR/sftp.out" 2>&1; then
			fail "'$command' was allowed:" "$(cat "$BATS_TEST_TMPDIR/sftp.out")"
		fi
	done
	assert_eq "$(stat -c '%a' "$logs/binary")" 644 "mode of logs/binary after chmod"
	assert_eq "$(stat -c '%a %U' "$logs")" "755 $A" "logs/"
	assert_eq "$(find "$logs" -mindepth 1 ! -name '*_success.log.gz' ! -name heartbeat -printf '%f\n')" binary "entries of logs/ besides the first update's log and the heartbeat"
	rm -f "$logs/binary"
}

@test "a 300 MB upload named like a log: status never reads it and still says failing; the prune shortens it, keeping its name, whose success then counts" {
	# The machine fails its next configuration.
	printf '%s\n' 'exit 1' > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy
	run -1 e2e_machine "$A"
	rm "$E2E_FLEET/hosts/$A/build-extra.sh"
	run -2 bento status --json
	assert_eq "$(e2e_status_state "$A")" failing "bento status"

	# Then uploads 300 MB named like a success of the expected system (over
	# the default LOG_SIZE_LIMIT of 16 MiB).
	big=$(date -u +%Y%m%d-%H%M)_$(e2e_expected "$A")_success.log.gz
	head -c 300M /dev/zero > "$BATS_TEST_TMPDIR/big"
	run -0 sftp_batch_as_a "put $BATS_TEST_TMPDIR/big logs/$big"
	rm "$BATS_TEST_TMPDIR/big"
	assert_eq "$(stat -c %s "$E2E_CHROOT/$A/logs/$big")" 314572800 "size on the server"

	run -2 bento status --json
	assert_eq "$(e2e_status_state "$A")" failing "bento status"
	run -2 bento status
	assert_contains "$output" "\"$big\" (314572800 bytes, over the 16777216-byte limit: not read)"

	run -0 prune
	assert_contains "$output" "prune-logs: emptied $E2E_CHROOT/$A/logs/$big (314572800 bytes, over LOG_SIZE_LIMIT)"
	size=$(stat -c %s "$E2E_CHROOT/$A/logs/$big")
	[ "$size" -lt 1000 ] || fail "the prune left $size bytes"
	# What the name says counts now (docs/protocol.md §5): a failure and a
	# success since the last publication.
	run -2 bento status --json
	assert_eq "$(e2e_status_state "$A")" extra-logs "bento status"
	run -2 bento status
	assert_not_contains "$output" "$big"
	rm "$E2E_CHROOT/$A/logs/$big"
}

@test "a stray file next to the failure log: still failing, exit 2; the prune leaves it (not oversize)" {
	run -0 sftp_batch_as_a "put $E2E_FLEET/config.sh logs/notes.txt"
	run -2 bento status --json
	assert_eq "$(e2e_status_state "$A")" failing "bento status"
	run -2 bento status
	assert_contains "$output" "$A/logs holds an entry that is not a log (ignored): \"notes.txt\""
	rm "$E2E_CHROOT/$A/logs/notes.txt"
}

@test "setup-debian.sh warns when CHROOT_DIR is not on a nosuid,nodev,noexec file system" {
	# The lab's CHROOT_DIR is under /srv, on the root file system.
	assert_contains "$(cat "$E2E_STATE/setup-debian.out")" "setup-debian.sh: warning: $E2E_CHROOT is on the file system mounted at"
	assert_contains "$(cat "$E2E_STATE/setup-debian.out")" "without"
}
