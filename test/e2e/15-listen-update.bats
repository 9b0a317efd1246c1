#!/usr/bin/env bats
# The listen-update socket (README, "On the machines"): a connection starts bento-upgrade and
# streams its journal until the update has finished. The service's script,
# taken from the client module evaluated as NixOS would, runs as systemd runs
# it (bash -e, the connection on stdin and stdout: systemd-socket-activate
# --inetd), with systemctl and journalctl stand-ins that play a oneshot
# bento-upgrade running for a few seconds. No server needed. `bento trigger`
# asks that socket to start an update (its last test).

load lib/e2e

setup_file() {
	export FLEET=$BATS_FILE_TMPDIR/fleet
	mkdir -p "$FLEET/hosts/probe" "$FLEET/keys"
	printf '%s\n' CHROOT_DIR=/srv/bento-e2e-unused REMOTE_IP=127.0.0.1 > "$FLEET/config.sh"
	printf '{ ... }: { }\n' > "$FLEET/hosts/probe/configuration.nix"
	node "$E2E_REPO/dist/main.js" --dir "$FLEET" generate > "$BATS_FILE_TMPDIR/generate.out" 2>&1 ||
		fail "bento generate failed:" "$(cat "$BATS_FILE_TMPDIR/generate.out")"
	local root=$BATS_FILE_TMPDIR/config
	mkdir -p "$root/utils"
	cp "$E2E_REPO/utils/bento.nix" "$root/utils/bento.nix"
	cp "$FLEET/generated/client/bento-units.nix" "$root/bento-units.nix"
	export SCRIPT=$BATS_FILE_TMPDIR/listen-update.sh
	e2e_eval_nixos "[ $root/utils/bento.nix ]" 'config.systemd.services."listen-update@".script' | jq -r . > "$SCRIPT"
	[ -s "$SCRIPT" ] || fail "no listen-update@ script"

	# The stand-ins. bento-upgrade runs UPDATE_SECONDS seconds, one journal
	# line a second, and exits with UPDATE_STATUS; like systemd, `is-active`
	# is false while a oneshot unit is still "activating".
	export FAKE=$BATS_FILE_TMPDIR/fake
	mkdir -p "$FAKE/bin"
	cat > "$FAKE/bin/systemctl" <<-'EOF2'
		#!/bin/sh
		printf 'systemctl %s\n' "$*" >> "$FAKE/calls"
		update() {
			touch "$FAKE/activating"
			i=1
			while [ "$i" -le "$(cat "$FAKE/update-seconds")" ]; do
				echo "bento: update step $i" >> "$FAKE/journal"
				sleep 1
				i=$((i + 1))
			done
			echo "bento: update finished" >> "$FAKE/journal"
			rm "$FAKE/activating"
			return "$(cat "$FAKE/update-status")"
		}
		case "$*" in
		"start bento-upgrade.service") update ;;
		"start --no-block bento-upgrade.service") update > /dev/null 2>&1 & ;;
		"is-active --quiet bento-upgrade.service") exit 3 ;;
		*) echo "systemctl stand-in: unexpected: $*" >&2; exit 1 ;;
		esac
	EOF2
	cat > "$FAKE/bin/journalctl" <<-'EOF2'
		#!/bin/sh
		printf 'journalctl %s\n' "$*" >> "$FAKE/calls"
		exec tail -n +1 -f "$FAKE/journal"
	EOF2
	chmod +x "$FAKE/bin/systemctl" "$FAKE/bin/journalctl"

	LISTEN_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
	export LISTEN_PORT
	setsid systemd-socket-activate -l "127.0.0.1:$LISTEN_PORT" --accept --inetd \
		-E PATH="$FAKE/bin:$PATH" -E FAKE="$FAKE" \
		bash -e "$SCRIPT" > /dev/null 2> "$BATS_FILE_TMPDIR/listen.err" < /dev/null 3>&- &
	echo "$!" > "$BATS_FILE_TMPDIR/listen.pid"
	local i=0
	until [ -n "$(ss -Hltn "sport = :$LISTEN_PORT")" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || fail "systemd-socket-activate is not listening:" "$(cat "$BATS_FILE_TMPDIR/listen.err")"
		sleep 0.05
	done
}

teardown_file() {
	# The process group of systemd-socket-activate and the scripts it started.
	if [ -f "$BATS_FILE_TMPDIR/listen.pid" ]; then
		kill -- "-$(cat "$BATS_FILE_TMPDIR/listen.pid")" 2> /dev/null || true
	fi
}

setup() {
	: > "$FAKE/journal"
	rm -f "$FAKE/calls" "$FAKE/activating"
	echo 4 > "$FAKE/update-seconds"
	echo 0 > "$FAKE/update-status"
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
