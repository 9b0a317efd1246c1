#!/usr/bin/env bats
# Compatibility (docs/protocol.md, the wire protocol): the chroot that bento deploy
# publishes and the logs the client uploads have the layout and names of the
# original bento, and a client installed by the original scripts keeps
# working against it (its SFTP exchanges replayed by lib/original-client.sh).

load lib/e2e

setup_file() {
	e2e_setup_suite a b:nonflake c
	export A B C
	A=$(sys a)
	B=$(sys b)
	C=$(sys c)
	# The original's bootstrap.sh was run by hand, its plain sftp asking
	# whether to trust the server's host key: root's known_hosts holds it.
	e2e_known_host "$C"
	e2e_deploy_or_fail
	for name in "$A" "$B"; do
		e2e_first_update_or_fail "$name"
	done
}

teardown_file() {
	e2e_teardown_suite
}

# owner:group mode of a path (following a symlink with -L).
perms() {
	stat -c '%U:%G %a' "$@"
}

original() {
	local name=$1
	shift
	e2e_machine "$name" "$E2E_LIB/original-client.sh" "$name" 127.0.0.1 "$E2E_PORT" "$@"
}

@test "the chroot layout is that of docs/protocol.md §2" {
	assert_eq "$(perms "$E2E_CHROOT")" "root:root 755" "CHROOT_DIR"
	assert_eq "$(perms "$E2E_CHROOT/states.txt")" "root:root 644" "states.txt"
	# states.txt: one line per flake system, <name>=<store path basename>.
	while IFS= read -r line; do
		assert_match "$line" '^[a-z_][a-z0-9_-]*=[0-9a-z]{32}-nixos-system-[^/]+$'
		assert_contains "${line#*=}" "-nixos-system-${line%%=*}-"
	done < "$E2E_CHROOT/states.txt"
	assert_contains "$(cat "$E2E_CHROOT/states.txt")" "$A="
	assert_contains "$(cat "$E2E_CHROOT/states.txt")" "$C="
	assert_not_contains "$(cat "$E2E_CHROOT/states.txt")" "$B="

	for name in "$A" "$B" "$C"; do
		dir=$E2E_CHROOT/$name
		assert_eq "$(perms "$dir")" "root:sftp_users 755" "$name/"
		[ -f "$dir/last_change_date" ] || fail "$name/last_change_date is missing"
		assert_eq "$(stat -c %U "$dir/last_change_date")" root "owner of $name/last_change_date"
		# Readable by the machine (group sftp_users), not by other local users.
		assert_eq "$(perms -L "$dir/config")" "root:sftp_users 750" "$name/config/"
		assert_eq "$(perms "$dir/logs")" "$name:sftp_users 755" "$name/logs/"
		# config/ holds the host's files and the client's, all root's and
		# read-only for the machine.
		for file in update.sh bootstrap.sh .gitignore .bento-manifest bento-module.nix bento-units.nix utils/bento.nix; do
			[ -f "$dir/config/$file" ] || fail "$name/config/$file is missing"
		done
		bad=$(find -L "$dir/config/" \( ! -user root -o -perm /022 \) -print)
		assert_eq "$bad" "" "files of $name/config/ owned by others or writable"
		(cd "$dir/config" && sha256sum -c --quiet --strict .bento-manifest)
		digest=$(sha256sum "$dir/config/.bento-manifest" | cut -d ' ' -f 1)
		assert_eq "$(cut -d ' ' -f 1 "$dir/last_change_date")" "$digest" "manifest digest in last_change_date"
	done
	[ -f "$E2E_CHROOT/$A/config/flake.nix" ] || fail "the flake is missing"
	[ -f "$E2E_CHROOT/$B/config/configuration.nix" ] || fail "configuration.nix is missing"
}

@test "the log names are those of docs/protocol.md §5 (UTC date, store path basename, result)" {
	for name in "$A" "$B"; do
		log=$(e2e_logs "$name")
		assert_match "$log" "$(e2e_log_name_regex "$name" success)"
		# The date is the machine's UTC time of the run, to the minute.
		stamp=${log%%_*}
		logged=$(date -u -d "${stamp:0:8} ${stamp:9:2}:${stamp:11:2}" +%s)
		now=$(date -u +%s)
		[ $((now - logged)) -ge 0 ] && [ $((now - logged)) -lt 900 ] || fail "log date $stamp is not the current UTC time"
		gzip -t "$E2E_CHROOT/$name/logs/$log"
	done
	# A flake system's log names the store path states.txt expects.
	assert_eq "$(e2e_logs "$A" | cut -d _ -f 2)" "$(e2e_expected "$A")" "store path in the log name"
}

@test "an original client's poll (ls -l last_change_date) works" {
	run -0 original "$C" poll
	assert_match "$output" '^-rw-r--r-- .* last_change_date$'
}

@test "an original client's download (cd config; get -R .) gets the whole configuration" {
	run -0 original "$C" fetch
	m=$E2E_MACHINES/$C/var-bento
	(cd "$m" && sha256sum -c --quiet --strict .bento-manifest)
	cmp "$m/flake.nix" "$E2E_FLEET/hosts/$C/flake.nix"
	[ -f "$m/bootstrap.sh" ] && [ -f "$m/update.sh" ] || fail "the client scripts are missing"
	find "$m" -mindepth 1 -maxdepth 1 ! -name .bento-manifest -exec rm -rf {} +
	rm -f "$m/.bento-manifest"
}

@test "an original client's log upload (put /logs/NAME) is read by bento status" {
	expected=$(e2e_expected "$C")
	printf 'an original log\n' | gzip > "$E2E_MACHINES/$C/var-bento/log.gz"
	run -0 original "$C" put /var/bento/log.gz "$(date -u +%Y%m%d-%H%M)_${expected}_success.log.gz"
	rm "$E2E_MACHINES/$C/var-bento/log.gz"
	assert_match "$(e2e_logs "$C")" "$(e2e_log_name_regex "$C" success)"
	run -0 e2e_status_state "$C"
	assert_eq "$output" up-to-date "bento status"
	rm "$E2E_CHROOT/$C/logs/"*
}

@test "an original client's update.sh fetches the published bootstrap.sh and runs it: the machine moves to the new client" {
	run -0 original "$C" update
	assert_contains "$output" "update required"
	assert_contains "$output" "switching to $(e2e_expected "$C")"
	assert_eq "$(e2e_profile "$C")" "/nix/store/$(e2e_expected "$C")" "system profile"
	assert_match "$(e2e_logs "$C")" "$(e2e_log_name_regex "$C" success)"
	# /var/bento now holds the new client, which the unit runs from then on.
	cmp "$E2E_MACHINES/$C/var-bento/update.sh" "$E2E_FLEET/generated/systems/$C/update.sh"
	run -0 e2e_machine "$C"
	assert_contains "$output" "no update required"
	# And the original's own check still sees nothing new.
	run -0 original "$C" update
	assert_contains "$output" "no update required"
}
