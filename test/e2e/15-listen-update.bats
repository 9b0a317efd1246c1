#!/usr/bin/env bats
# The listen-update socket (docs/machines.md): a connection from an
# allowed peer that sends its request head in time starts bento-upgrade and
# streams its journal until the update has finished. The service's script,
# taken from the client module evaluated as NixOS would, runs as systemd runs
# it: bash -e, the connection on stdin and stdout (systemd-socket-activate
# --inetd), the peer's address in REMOTE_ADDR (as a socket with Accept=yes
# gives it, systemd.socket(5)), and nothing but the unit's environment: its
# PATH is its `path` and systemd's defaults, packages holding this machine's
# tools, with systemctl and journalctl stand-ins that play a oneshot
# bento-upgrade running for a few seconds — and, like systemd, merge a start
# into a run already pending or running. No server needed. `bento trigger`
# asks that socket to start an update (its last test).

load lib/e2e

setup_file() {
	export FLEET=$BATS_FILE_TMPDIR/fleet
	mkdir -p "$FLEET/hosts/probe" "$FLEET/keys"
	# The server of REMOTE_IP is the only peer allowed by default.
	printf '%s\n' CHROOT_DIR=/srv/bento-e2e-unused REMOTE_IP=127.0.0.1 > "$FLEET/config.sh"
	printf '{ ... }: { }\n' > "$FLEET/hosts/probe/configuration.nix"
	node "$E2E_REPO/dist/main.js" --dir "$FLEET" generate > "$BATS_FILE_TMPDIR/generate.out" 2>&1 ||
		fail "bento generate failed:" "$(cat "$BATS_FILE_TMPDIR/generate.out")"
	local root=$BATS_FILE_TMPDIR/config
	mkdir -p "$root/utils"
	cp "$E2E_REPO/utils/bento.nix" "$root/utils/bento.nix"
	cp "$FLEET/generated/client/bento-units.nix" "$FLEET/generated/client/bento-module.nix" "$root/"

	# The stand-ins. bento-upgrade runs UPDATE_SECONDS seconds, one journal
	# line a second, and exits with UPDATE_STATUS. Like systemd, a start of a
	# unit that has a start job waiting or running is merged into that job
	# (src/core/job.c, job_install): it waits for that run and gets its result.
	export FAKE=$BATS_FILE_TMPDIR/fake PKGS=$BATS_FILE_TMPDIR/pkgs
	mkdir -p "$FAKE"
	make_packages
	# FAKE is written into each stand-in: the script under test gets the
	# unit's environment, and nothing of the lab's.
	local fake
	fake="FAKE=$(e2e_sh_quote "$FAKE")"
	{ printf '#!/bin/sh\n%s\n' "$fake"; cat; } > "$PKGS/systemd/bin/systemctl" <<-'EOF2'
		printf 'systemctl %s\n' "$*" >> "$FAKE/calls"
		case "$*" in
		"start bento-upgrade.service") ;;
		*) echo "systemctl stand-in: unexpected: $*" >&2; exit 1 ;;
		esac
		if ! mkdir "$FAKE/job" 2> /dev/null; then
			while [ -d "$FAKE/job" ]; do sleep 0.1; done
			exit "$(cat "$FAKE/job-status")"
		fi
		echo run >> "$FAKE/runs"
		i=1
		while [ "$i" -le "$(cat "$FAKE/update-seconds")" ]; do
			echo "bento: update step $i" >> "$FAKE/journal"
			sleep 1
			i=$((i + 1))
		done
		echo "bento: update finished" >> "$FAKE/journal"
		cat "$FAKE/update-status" > "$FAKE/job-status"
		rmdir "$FAKE/job"
		exit "$(cat "$FAKE/job-status")"
	EOF2
	{ printf '#!/bin/sh\n%s\n' "$fake"; cat; } > "$PKGS/systemd/bin/journalctl" <<-'EOF2'
		printf 'journalctl %s\n' "$*" >> "$FAKE/calls"
		exec tail -n +1 -f "$FAKE/journal"
	EOF2
	chmod +x "$PKGS/systemd/bin/systemctl" "$PKGS/systemd/bin/journalctl"

	export SCRIPT=$BATS_FILE_TMPDIR/listen-update.sh
	e2e_eval_nixos "[ $root/utils/bento.nix ]" 'config.systemd.services."listen-update@".script' "$PKGS" | jq -r . > "$SCRIPT"
	[ -s "$SCRIPT" ] || fail "no listen-update@ script"
	# The unit's environment (its Environment= and PATH), and nothing else.
	e2e_eval_nixos "[ $root/utils/bento.nix ]" 'environments."listen-update@"' "$PKGS" |
		jq -j 'to_entries[] | "\(.key)=\(.value)\u0000"' > "$BATS_FILE_TMPDIR/unit.env"

	# What systemd does for each connection: the instance's environment and
	# REMOTE_ADDR; the script runs under the shell NixOS names by its store
	# path (makeJobScript in nixos/lib/systemd-lib.nix), not one from PATH.
	cat > "$BATS_FILE_TMPDIR/instance.sh" <<-'EOF2'
		#!/bin/bash
		peer=$(node "$E2E_PEER_JS")
		mapfile -d '' assignments < "$UNIT_ENV"
		exec env -i "${assignments[@]}" REMOTE_ADDR="$peer" /bin/bash -e "$SCRIPT"
	EOF2
	cat > "$BATS_FILE_TMPDIR/peer.js" <<-'EOF2'
		// The peer of the connection on stdin, as systemd puts it in REMOTE_ADDR (IPv4 without ::ffff:).
		const net = require('net');
		const socket = new net.Socket({ fd: 0, readable: false, writable: false });
		process.stdout.write((socket.remoteAddress || '').replace(/^::ffff:/, ''));
		process.exit(0);
	EOF2
	chmod +x "$BATS_FILE_TMPDIR/instance.sh"

	LISTEN_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
	export LISTEN_PORT
	setsid systemd-socket-activate -l "127.0.0.1:$LISTEN_PORT" --accept --inetd \
		-E E2E_PEER_JS="$BATS_FILE_TMPDIR/peer.js" -E UNIT_ENV="$BATS_FILE_TMPDIR/unit.env" -E SCRIPT="$SCRIPT" -E PATH="$PATH" \
		"$BATS_FILE_TMPDIR/instance.sh" > /dev/null 2> "$BATS_FILE_TMPDIR/listen.err" < /dev/null 3>&- &
	echo "$!" > "$BATS_FILE_TMPDIR/listen.pid"
	local i=0
	until [ -n "$(ss -Hltn "sport = :$LISTEN_PORT")" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || fail "systemd-socket-activate is not listening:" "$(cat "$BATS_FILE_TMPDIR/listen.err")"
		sleep 0.05
	done
}

# Stand-ins for the packages on the unit's PATH: PKGS/<attribute>/bin links to
# the binaries of the Debian package that provides the same tools; systemd's
# systemctl and journalctl are the stand-ins above.
make_packages() {
	local attribute debian file
	for attribute in coreutils:coreutils findutils:findutils gnugrep:grep gnused:sed getent:libc-bin; do
		debian=${attribute#*:}
		attribute=${attribute%%:*}
		mkdir -p "$PKGS/$attribute/bin"
		while read -r file; do
			[ -x "$file" ] && ln -sf "$file" "$PKGS/$attribute/bin/$(basename "$file")"
		done < <(dpkg -L "$debian" | grep -E '^(/usr)?/s?bin/[^/]+$')
	done
	mkdir -p "$PKGS/systemd/bin"
}

teardown_file() {
	# The process group of systemd-socket-activate and the scripts it started.
	if [ -f "$BATS_FILE_TMPDIR/listen.pid" ]; then
		kill -- "-$(cat "$BATS_FILE_TMPDIR/listen.pid")" 2> /dev/null || true
	fi
}

setup() {
	: > "$FAKE/journal"
	rm -rf "$FAKE/calls" "$FAKE/runs" "$FAKE/job" "$FAKE/job-status"
	echo 4 > "$FAKE/update-seconds"
	echo 0 > "$FAKE/update-status"
}

# runs: how many times bento-upgrade ran.
runs() {
	if [ -f "$FAKE/runs" ]; then wc -l < "$FAKE/runs"; else echo 0; fi
}

@test "the stream lasts for the whole update, and ends cleanly" {
	start=$(date +%s)
	run -0 curl -sS -i --max-time 30 "http://127.0.0.1:$LISTEN_PORT/"
	assert_contains "$output" "HTTP/1.0 200 OK"
	for i in 1 2 3 4; do
		assert_contains "$output" "bento: update step $i"
	done
	assert_contains "$output" "bento: update finished"
	assert_not_contains "$output" "the update failed"
	[ $(($(date +%s) - start)) -ge 4 ] || fail "the stream ended before the update"
	# One journal follower and one blocking start.
	assert_eq "$(grep -c '^systemctl' "$FAKE/calls")" 1 "systemctl calls"
	assert_match "$(cat "$FAKE/calls")" '^systemctl start bento-upgrade.service$'
	assert_match "$(cat "$FAKE/calls")" '^journalctl --no-pager --follow --since [0-9-]+ [0-9:]+ -u bento-upgrade.service$'
}

@test "the request head is read before the answer, which comes only once it is complete" {
	exec 4<> "/dev/tcp/127.0.0.1/$LISTEN_PORT"
	printf 'GET / HTTP/1.1\r\nHost: machine\r\nUser-Agent: bats\r\n' >&4
	sleep 1.5
	[ ! -e "$FAKE/calls" ] || fail "the update started before the request was complete:" "$(cat "$FAKE/calls")"
	if IFS= read -r -t 0.2 line <&4; then
		fail "an answer before the request was complete: $line"
	fi
	printf '\r\n' >&4
	response=$(timeout 30 cat <&4)
	exec 4<&-
	assert_contains "$response" "HTTP/1.0 200 OK"
	assert_contains "$response" "bento: update finished"
}

@test "a failed update says so at the end of the stream (a request with bare newlines)" {
	echo 1 > "$FAKE/update-seconds"
	echo 1 > "$FAKE/update-status"
	exec 4<> "/dev/tcp/127.0.0.1/$LISTEN_PORT"
	printf 'GET / HTTP/1.0\n\n' >&4
	response=$(timeout 30 cat <&4)
	exec 4<&-
	assert_contains "$response" "bento: update finished"
	assert_eq "$(printf '%s\n' "$response" | tail -n 1)" \
		"bento: the update failed (systemctl start bento-upgrade.service: exit status 1)" "last line"
}

@test "only the servers of REMOTE_IP may trigger: a connection from another address gets no answer and starts nothing" {
	run curl -sS -i --max-time 10 --interface 127.0.0.2 "http://127.0.0.1:$LISTEN_PORT/"
	assert_not_contains "$output" "HTTP/1.0"
	assert_contains "$(cat "$BATS_FILE_TMPDIR/listen.err")" "bento: a connection from 127.0.0.2 is not allowed (services.bento.listen): closed, no update"
	# The server itself may.
	echo 1 > "$FAKE/update-seconds"
	run -0 curl -sS -i --max-time 30 "http://127.0.0.1:$LISTEN_PORT/"
	assert_contains "$output" "bento: update finished"
	assert_eq "$(runs)" 1 "runs"
}

@test "a request head that is not whole within 5 seconds (nothing sent, or a line every 2 s) closes the connection with no update" {
	exec 4<> "/dev/tcp/127.0.0.1/$LISTEN_PORT"
	exec 5<> "/dev/tcp/127.0.0.1/$LISTEN_PORT"
	# One header line every 2 seconds, never done within 5 (the socket's end may be closed meanwhile).
	(
		trap '' PIPE
		printf 'GET / HTTP/1.1\r\n' >&5 || exit 0
		for i in 1 2 3 4 5; do
			sleep 2
			printf 'X-Slow: %s\r\n' "$i" >&5 || exit 0
		done
		printf '\r\n' >&5 || :
	) &
	slow=$!
	start=$(date +%s)
	silent=$(timeout 30 cat <&4)
	elapsed=$(($(date +%s) - start))
	slowly=$(timeout 30 cat <&5)
	exec 4<&- 5<&-
	wait "$slow" || :
	assert_eq "$silent" "" "answer to a connection that sent nothing"
	assert_eq "$slowly" "" "answer to a connection that sent a line every 2 s"
	[ "$elapsed" -le 7 ] || fail "a connection that sent nothing was held ${elapsed}s"
	# Nothing starts afterwards either.
	sleep 2
	assert_eq "$(runs)" 0 "runs"
	[ ! -e "$FAKE/calls" ] || fail "an update was started:" "$(cat "$FAKE/calls")"
	assert_contains "$(cat "$BATS_FILE_TMPDIR/listen.err")" "bento: 127.0.0.1 sent no whole request head in 5 seconds: closed, no update"
}

@test "triggers that come while a run is pending or running join it: a burst of connections is one run, and each stream shows its end" {
	for i in 1 2 3 4 5 6; do
		curl -sS --max-time 30 "http://127.0.0.1:$LISTEN_PORT/" > "$BATS_TEST_TMPDIR/stream.$i" 2>&1 &
	done
	sleep 2
	for i in 7 8; do
		curl -sS --max-time 30 "http://127.0.0.1:$LISTEN_PORT/" > "$BATS_TEST_TMPDIR/stream.$i" 2>&1 &
	done
	wait
	assert_eq "$(runs)" 1 "runs for 8 triggers during one run"
	for i in 1 2 3 4 5 6 7 8; do
		assert_contains "$(cat "$BATS_TEST_TMPDIR/stream.$i")" "bento: update finished"
		assert_not_contains "$(cat "$BATS_TEST_TMPDIR/stream.$i")" "the update failed"
	done
	# Once it has ended, a new trigger is a new run.
	echo 1 > "$FAKE/update-seconds"
	run -0 curl -sS --max-time 30 "http://127.0.0.1:$LISTEN_PORT/"
	assert_eq "$(runs)" 2 "runs after a later trigger"
}

@test "bento trigger: the socket answers and the update runs to its end after bento hung up; no listener: unreachable" {
	closed=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
	fleet=$BATS_TEST_TMPDIR/fleet
	mkdir -p "$fleet"
	printf '%s\n' CHROOT_DIR=/srv/bento-e2e-unused REMOTE_IP=127.0.0.1 \
		"TRIGGER_ADDRESSES=\"probe=127.0.0.1:$LISTEN_PORT gone=127.0.0.1:$closed\"" > "$fleet/config.sh"
	start=$(date +%s)
	run -2 node "$E2E_REPO/dist/main.js" --dir "$fleet" trigger probe gone
	# bento does not wait for the update (4 s here): the status line is enough.
	[ $(($(date +%s) - start)) -lt 4 ] || fail "bento trigger waited for the update"
	assert_contains "$output" "probe: triggered (127.0.0.1:$LISTEN_PORT)"
	assert_contains "$output" "gone: unreachable (127.0.0.1:$closed: ECONNREFUSED)"
	assert_contains "$output" "trigger: 1 triggered, 1 unreachable (they poll on their timer as usual)"
	i=0
	until grep -q 'bento: update finished' "$FAKE/journal"; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || fail "the update did not run to its end:" "$(cat "$FAKE/journal")"
		sleep 0.05
	done
	assert_match "$(cat "$FAKE/calls")" '^systemctl start bento-upgrade.service$'
}
