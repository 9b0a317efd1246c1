#!/usr/bin/env bats
# Isolation of the machines on the server (docs/protocol.md §1, §2): a machine's key
# logs in only as that machine, sees only its own chroot, cannot change its
# config/ or anything published, and can write only its logs/. Checked with
# the real sshd and the machines' real keys.

load lib/e2e

setup_file() {
	e2e_setup_suite a b
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
	printf 'payload\n' > "$BATS_TEST_TMPDIR/payload"
	# Fingerprint of everything published, to prove nothing changed.
	find "$E2E_CHROOT" -path '*/logs' -prune -o -printf '%p %y %m %u %s %T@\n' | sort > "$BATS_TEST_TMPDIR/published.before"
}

published_unchanged() {
	find "$E2E_CHROOT" -path '*/logs' -prune -o -printf '%p %y %m %u %s %T@\n' | sort > "$BATS_TEST_TMPDIR/published.after"
	diff "$BATS_TEST_TMPDIR/published.before" "$BATS_TEST_TMPDIR/published.after"
}

# sftp_as KEY_OF LOGIN: one batch session (commands on stdin) with machine
# KEY_OF's key, logging in as LOGIN.
sftp_as() {
	local m=$E2E_MACHINES/$1
	sftp -b - -F /dev/null -o LogLevel=ERROR -o BatchMode=yes -o IdentitiesOnly=yes -i "$m/ssh/id_ed25519" \
		-o UserKnownHostsFile="$m/ssh/known_hosts" -o StrictHostKeyChecking=yes -P "$E2E_PORT" "$2@127.0.0.1"
}

# refused KEY_OF LOGIN COMMAND: the sftp command must fail, in a session
# that logged in (sftp -b exits 1 when a command fails, 255 when ssh does: a
# login that failed for any reason would refuse everything).
refused() {
	local status=0
	printf '%s\n' "$3" | sftp_as "$1" "$2" > "$BATS_TEST_TMPDIR/sftp.out" 2>&1 || status=$?
	case $status in
	0) fail "as $2 with the key of $1, '$3' was allowed:" "$(cat "$BATS_TEST_TMPDIR/sftp.out")" ;;
	1) ;;
	*) fail "as $2 with the key of $1, '$3': the session itself failed (exit $status), so this proves nothing:" "$(cat "$BATS_TEST_TMPDIR/sftp.out")" ;;
	esac
}

# allowed KEY_OF LOGIN COMMAND: the same kind of command succeeds on the
# machine's own files (the positive control of refused).
allowed() {
	printf '%s\n' "$3" | sftp_as "$1" "$2" > "$BATS_TEST_TMPDIR/sftp.out" 2>&1 ||
		fail "as $2 with the key of $1, '$3' failed:" "$(cat "$BATS_TEST_TMPDIR/sftp.out")"
}

@test "a machine's key does not log in as another machine" {
	# The key logs in as its own machine, and B's as B.
	run -0 sftp_as "$A" "$A" <<< 'ls'
	run -0 sftp_as "$B" "$B" <<< 'ls'
	before=$(grep -c "Accepted publickey for $B " "$E2E_SERVER/sshd.log" || true)
	run -255 sftp_as "$A" "$B" <<< 'ls'
	assert_contains "$output" "Permission denied (publickey)"
	assert_eq "$(grep -c "Accepted publickey for $B " "$E2E_SERVER/sshd.log" || true)" "$before" "logins as $B"
	# And a made-up key is refused as anyone.
	mkdir -p "$BATS_TEST_TMPDIR/stranger"
	ssh-keygen -q -t ed25519 -N '' -f "$BATS_TEST_TMPDIR/stranger/id_ed25519"
	run -255 sftp -b - -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$BATS_TEST_TMPDIR/stranger/id_ed25519" \
		-o UserKnownHostsFile="$E2E_MACHINES/$A/ssh/known_hosts" -P "$E2E_PORT" "$A@127.0.0.1" <<< 'ls'
	assert_contains "$output" "Permission denied (publickey)"
}

@test "a machine sees only its own chroot: nothing of another machine can be read or listed" {
	run -0 sftp_as "$A" "$A" <<< 'ls -a /'
	assert_contains "$output" "config"
	assert_contains "$output" "logs"
	assert_contains "$output" "last_change_date"
	assert_not_contains "$output" "$B"
	run -0 sftp_as "$A" "$A" <<< 'ls -a /../..'
	assert_not_contains "$output" "$B"
	# What A may read of its own, with the same commands, works: the refusals below are B's files.
	allowed "$A" "$A" "ls /../logs"
	allowed "$A" "$A" "get /../last_change_date $BATS_TEST_TMPDIR/x"
	allowed "$A" "$A" "get config/flake.nix $BATS_TEST_TMPDIR/x"
	allowed "$A" "$A" "ls /logs"
	refused "$A" "$A" "ls /../$B"
	refused "$A" "$A" "ls $E2E_CHROOT/$B/logs"
	refused "$A" "$A" "ls $E2E_CHROOT"
	refused "$A" "$A" "get /../$B/last_change_date $BATS_TEST_TMPDIR/x"
	refused "$A" "$A" "get $E2E_CHROOT/$B/config/flake.nix $BATS_TEST_TMPDIR/x"
	refused "$A" "$A" "get $E2E_SERVER/authorized_keys.d/$B $BATS_TEST_TMPDIR/x"
	refused "$A" "$A" "get /etc/passwd $BATS_TEST_TMPDIR/x"
	refused "$A" "$A" "cd /srv"
}

@test "a machine cannot write to another machine's chroot" {
	logs_b=$(e2e_logs "$B")
	# The same upload into its own logs/ works.
	allowed "$A" "$A" "put $BATS_TEST_TMPDIR/payload /../logs/x.log.gz"
	rm "$E2E_CHROOT/$A/logs/x.log.gz"
	refused "$A" "$A" "put $BATS_TEST_TMPDIR/payload /../$B/logs/x.log.gz"
	refused "$A" "$A" "put $BATS_TEST_TMPDIR/payload $E2E_CHROOT/$B/logs/x.log.gz"
	refused "$A" "$A" "rm $E2E_CHROOT/$B/last_change_date"
	assert_eq "$(e2e_logs "$B")" "$logs_b" "logs of $B"
	published_unchanged
}

@test "a machine cannot change its config/, last_change_date or chroot" {
	version=$(readlink "$E2E_CHROOT/$A/config")
	for command in \
		"put $BATS_TEST_TMPDIR/payload config/new-file" \
		"put $BATS_TEST_TMPDIR/payload config/flake.nix" \
		"put $BATS_TEST_TMPDIR/payload config/utils/bento.nix" \
		"put $BATS_TEST_TMPDIR/payload $version/flake.nix" \
		"rm config/flake.nix" \
		"rename config/flake.nix config/moved.nix" \
		"mkdir config/dir" \
		"rmdir config/utils" \
		"chmod 777 config/flake.nix" \
		"symlink /logs config/logs-link" \
		"put $BATS_TEST_TMPDIR/payload last_change_date" \
		"rm last_change_date" \
		"chmod 666 last_change_date" \
		"rm config" \
		"rename config config-moved" \
		"rename logs logs-moved" \
		"symlink /logs /config2" \
		"put $BATS_TEST_TMPDIR/payload /new-file" \
		"mkdir /dir" \
		"chmod 777 /"; do
		refused "$A" "$A" "$command"
	done
	published_unchanged
}

@test "a machine can write its logs/, and its uploads belong to its own user" {
	run -0 sftp_as "$A" "$A" <<< "put $BATS_TEST_TMPDIR/payload logs/e2e-probe.log.gz"
	uploaded=$E2E_CHROOT/$A/logs/e2e-probe.log.gz
	[ -f "$uploaded" ] || fail "the upload is missing"
	assert_eq "$(stat -c %U "$uploaded")" "$A" "owner of the upload"
	rm "$uploaded"
	published_unchanged
}

@test "no shell, no command, no forwarding for a machine's key" {
	m=$E2E_MACHINES/$A
	ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$m/ssh/id_ed25519" -o UserKnownHostsFile="$m/ssh/known_hosts" -p "$E2E_PORT")
	run timeout 10 ssh "${ssh_opts[@]}" "$A@127.0.0.1" 'id; echo reached-a-shell' < /dev/null
	assert_not_contains "$output" "reached-a-shell"
	assert_not_contains "$output" "uid="
	run timeout 10 ssh "${ssh_opts[@]}" -o ExitOnForwardFailure=yes -N -R 127.0.0.1:0:127.0.0.1:22 "$A@127.0.0.1" < /dev/null
	[ "$status" -ne 0 ] || fail "remote forwarding was allowed"
	assert_contains "$output" "forwarding failed"
}

# effective_settings CONFIG USER: sshd's settings for USER logging in from
# 127.0.0.1 under CONFIG (sshd -T), one "keyword value" line each.
effective_settings() {
	/usr/sbin/sshd -T -f "$1" -C "user=$2,host=x,addr=127.0.0.1"
}

# assert_sftp_only SETTINGS: the Match block's settings are in force.
assert_sftp_only() {
	for line in "authenticationmethods publickey" "disableforwarding yes" "passwordauthentication no" \
		"allowtcpforwarding no" "allowagentforwarding no" "allowstreamlocalforwarding no" "x11forwarding no" \
		"permittunnel no" "permittty no" "chrootdirectory %h"; do
		assert_match "$1" "^$line\$"
	done
	# internal-sftp with its request allow list and umask (17-server-restrictions.bats tries them).
	assert_match "$1" "^forcecommand internal-sftp -p [a-z,-]+ -u 0133\$"
}

@test "the Match block (Debian snippet): keys only and no forwarding for the machines, whatever the global settings" {
	# The suite's server, with global settings as permissive as a default
	# NixOS (keyboard-interactive on) in front of the generated snippet.
	config=$BATS_TEST_TMPDIR/sshd_config
	{
		printf '%s\n' KbdInteractiveAuthentication\ yes PasswordAuthentication\ yes AllowTcpForwarding\ yes X11Forwarding\ yes
		grep -v -e '^PasswordAuthentication' -e '^KbdInteractiveAuthentication' "$E2E_SERVER/sshd_config"
	} > "$config"
	run -0 effective_settings "$config" "$A"
	assert_sftp_only "$output"
	# Only the machines: the Match block leaves other users alone.
	run -0 effective_settings "$config" root
	assert_match "$output" "^authenticationmethods any\$"
	assert_match "$output" "^disableforwarding no\$"
}

@test "the Match block (NixOS module): keys only and no forwarding, after NixOS's own settings" {
	run -0 e2e_eval_nixos "[ $E2E_FLEET/generated/server/sftp-server.nix ]" config.services.openssh.extraConfig
	extra_config=$(jq -r . <<< "$output")
	# sshd_config as nixpkgs writes it (services/networking/ssh/sshd.nix):
	# the settings with their NixOS defaults, then extraConfig.
	config=$BATS_TEST_TMPDIR/sshd_config
	printf '%s\n' "Port $E2E_PORT" "HostKey $E2E_SERVER/ssh_host_ed25519_key" \
		"KbdInteractiveAuthentication yes" "PasswordAuthentication yes" "PermitRootLogin prohibit-password" \
		"UsePAM yes" "X11Forwarding no" "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u" \
		"Subsystem sftp internal-sftp" "$extra_config" > "$config"
	run -0 effective_settings "$config" "$A"
	assert_sftp_only "$output"
	assert_match "$output" "^authorizedkeysfile /etc/ssh/authorized_keys.d/%u\$"
	run -0 effective_settings "$config" root
	assert_match "$output" "^authenticationmethods any\$"
}
