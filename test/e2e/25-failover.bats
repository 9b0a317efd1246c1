#!/usr/bin/env bats
# More than one server (docs/scale.md, "Several servers"): REMOTE_IP lists two, the
# machines try them in order and keep the first that answers for the whole
# run. Here both are real sshd on loopback (127.0.0.1 and 127.0.0.2, the
# same port), each with its own host key (known to the machines), serving
# the same CHROOT_DIR (a mirror kept in step). A session that cannot
# connect is retried for CONNECT_RETRY seconds, then the run gives up
# cleanly and keeps its queued logs. After a switch, a machine that lost its
# server but reaches the other one sends its log there and keeps its new
# system.

load lib/e2e

SECOND=127.0.0.2

setup_file() {
	export E2E_CONFIG_EXTRA="REMOTE_IP=\"127.0.0.1 $SECOND\""
	export E2E_CONNECT_RETRY=3
	e2e_setup_suite a
	export A
	A=$(sys a)
	start_second_server
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

SERVER2() { printf '%s\n' "$E2E_BASE/server2"; }

# The second server: the suite's sshd configuration on 127.0.0.2, with a
# host key of its own that the machines know. Its pid file is in the suite's
# directory: the suite's cleanup (lib/cleanup.sh) stops it whatever happens.
start_second_server() {
	local dir
	dir=$(SERVER2)
	mkdir -p "$dir"
	ssh-keygen -q -t ed25519 -N '' -C "e2e-server-2" -f "$dir/ssh_host_ed25519_key"
	sed -e "s|^ListenAddress .*|ListenAddress $SECOND|" \
		-e "s|^HostKey .*|HostKey $dir/ssh_host_ed25519_key|" \
		-e "s|^PidFile .*|PidFile $dir/sshd.pid|" "$E2E_SERVER/sshd_config" > "$dir/sshd_config"
	/usr/sbin/sshd -t -f "$dir/sshd_config" || fail "sshd -t refused $dir/sshd_config"
	printf '[%s]:%s %s\n' "$SECOND" "$E2E_PORT" "$(cut -d ' ' -f 1,2 "$dir/ssh_host_ed25519_key.pub")" >> "$E2E_MACHINES/$A/ssh/known_hosts"
	run_second_server
}

run_second_server() {
	local dir
	dir=$(SERVER2)
	/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" < /dev/null > /dev/null 2>&1 3>&- ||
		fail "the second sshd did not start:" "$(tail -n 20 "$dir/sshd.log")"
	local i=0
	until [ -n "$(ss -Hltn "src $SECOND:$E2E_PORT")" ] && [ -s "$dir/sshd.pid" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || fail "the second sshd is not listening:" "$(tail -n 20 "$dir/sshd.log")"
		sleep 0.05
	done
}

# The first server again, while the second listens on the same port.
run_first_server() {
	[ -z "$(ss -Hltn "src 127.0.0.1:$E2E_PORT")" ] || return 0
	rm -f "$E2E_SERVER/sshd.pid"
	/usr/sbin/sshd -f "$E2E_SERVER/sshd_config" -E "$E2E_SERVER/sshd.log" < /dev/null > /dev/null 2>&1 3>&- ||
		fail "sshd did not start:" "$(tail -n 20 "$E2E_SERVER/sshd.log")"
	local i=0
	until [ -n "$(ss -Hltn "src 127.0.0.1:$E2E_PORT")" ] && [ -s "$E2E_SERVER/sshd.pid" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || fail "sshd is not listening:" "$(tail -n 20 "$E2E_SERVER/sshd.log")"
		sleep 0.05
	done
}

logins() {
	grep -c "Accepted publickey for $A" "$1/sshd.log" || true
}

@test "the machines know both servers' host keys; with both up the first one is used" {
	e2e_new_revision "$A"
	e2e_deploy_or_fail "$A"
	first=$(logins "$E2E_SERVER")
	second=$(logins "$(SERVER2)")
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	[ "$(logins "$E2E_SERVER")" -gt "$first" ] || fail "the first server had no login"
	assert_eq "$(logins "$(SERVER2)")" "$second" "logins on the second server"
}

@test "the first server stopped: the machine updates from the second, every session there" {
	e2e_new_revision "$A"
	e2e_deploy_or_fail "$A"
	e2e_stop_sshd
	second=$(logins "$(SERVER2)")
	logs_before=$(e2e_log_count "$A")
	run -0 e2e_machine "$A"
	assert_contains "$output" "could not open a session on 127.0.0.1; trying $SECOND"
	assert_contains "$output" "switching to"
	assert_not_contains "$output" "trying again"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	# The poll and the download share a connection, the log goes up in another: two logins, both on the second server.
	assert_eq "$(($(logins "$(SERVER2)") - second))" 2 "logins on the second server"
	assert_eq "$(e2e_log_count "$A")" $((logs_before + 1)) "logs on the server"
	assert_contains "$(e2e_newest_log "$A")" "_success.log.gz"
}

@test "the first server lost after the switch, the second up: the log goes to the second, no rollback" {
	run_first_server
	e2e_new_revision "$A"
	e2e_deploy_or_fail "$A"
	new=/nix/store/$(e2e_expected "$A")
	e2e_stop_sshd_hook "$A" after-switch
	second=$(logins "$(SERVER2)")
	e2e_clear_record "$A"
	run -0 e2e_machine "$A"
	e2e_clear_hooks "$A"
	assert_contains "$output" "switching to $(basename "$new")"
	assert_not_contains "$output" "rolling back"
	assert_not_contains "$(e2e_record "$A")" "--rollback"
	assert_eq "$(e2e_profile "$A")" "$new" "system profile"
	# One login on the second server: the log, sent there (the mirror's logs come back to the first).
	assert_eq "$(($(logins "$(SERVER2)") - second))" 1 "logins on the second server"
	assert_eq "$(find "$E2E_MACHINES/$A/var-bento/.bento/pending" -name '*.log.gz' | wc -l)" 0 "queued logs"
	[ -n "$(find "$E2E_CHROOT/$A/logs" -name "*_$(basename "$new")_success.log.gz")" ] || fail "the log did not arrive"
	# The first server stays stopped, as the next test expects.
}

@test "both stopped: retried for CONNECT_RETRY, then a clean failure that keeps the queued log" {
	# A log an earlier run could not send.
	queued=20240101-0000_$(basename "$(e2e_profile "$A")")_success.log.gz
	printf 'an earlier run\n' | gzip > "$E2E_MACHINES/$A/var-bento/.bento/pending/$queued"
	sh "$E2E_LIB/stop-sshd.sh" "$(SERVER2)" > /dev/null
	e2e_new_revision "$A"
	e2e_deploy_or_fail "$A"
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"
	start=$(date +%s)
	run -1 e2e_machine "$A"
	elapsed=$(($(date +%s) - start))
	assert_contains "$output" "trying again in"
	assert_contains "$output" "cannot reach the bento server"
	assert_contains "$output" "127.0.0.1: ssh: connect to host 127.0.0.1 port $E2E_PORT: Connection refused"
	assert_contains "$output" "$SECOND: ssh: connect to host $SECOND port $E2E_PORT: Connection refused"
	# CONNECT_RETRY=3, TIMEOUT=5, two servers: at most 3 + 2 x 5 s (refused connections fail at once).
	[ "$elapsed" -le 13 ] || fail "it tried for ${elapsed}s"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files, queued log included"
	[ -f "$E2E_MACHINES/$A/var-bento/.bento/pending/$queued" ] || fail "the queued log is gone"
}

@test "the second server back: the waiting configuration is applied and the queued log sent" {
	run_second_server
	run -0 e2e_machine "$A"
	assert_contains "$output" "could not open a session on 127.0.0.1; trying $SECOND"
	assert_contains "$output" "switching to"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	assert_eq "$(find "$E2E_MACHINES/$A/var-bento/.bento/pending" -name '*.log.gz' | wc -l)" 0 "queued logs"
	[ -n "$(find "$E2E_CHROOT/$A/logs" -name '20240101-0000_*_success.log.gz')" ] || fail "the queued log did not arrive"
}
