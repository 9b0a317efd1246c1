#!/usr/bin/env bats
# The fleet view with real machines (docs/protocol.md §5a, §7; docs/alerts.md):
# an idle poll moves "seen" and nothing else, a machine that stops is
# silent once SILENT_AFTER passed (time passes by setting mtimes back, not
# by sleeping), a rollback made by hand is drift, and a failure reaches a
# real HTTP hook on 127.0.0.1 and a command exactly once, its recovery once.

load lib/e2e

setup_file() {
	export HOOKS_DIR=$BATS_FILE_TMPDIR
	node "$BATS_TEST_DIRNAME/lib/webhook.mjs" "$HOOKS_DIR/posts" "$HOOKS_DIR/port" 3>&- &
	echo $! > "$HOOKS_DIR/webhook.pid"
	for _ in $(seq 50); do [ -s "$HOOKS_DIR/port" ] && break; sleep 0.1; done
	[ -s "$HOOKS_DIR/port" ] || fail "the webhook did not start"
	: > "$HOOKS_DIR/posts"
	local port
	port=$(cat "$HOOKS_DIR/port")
	export E2E_CONFIG_EXTRA="SILENT_AFTER=1h
NOTIFY_URL=http://127.0.0.1:$port/hooks/T0KEN
NOTIFY_COMMAND='cat >> $HOOKS_DIR/command-runs; echo >> $HOOKS_DIR/command-runs'"
	e2e_setup_suite a b
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$A"
	e2e_machine "$B" bootstrap > "$E2E_STATE/first-run-b.out" 2>&1 || fail "the first update of b failed:" "$(cat "$E2E_STATE/first-run-b.out")"
}

teardown_file() {
	if [ -f "${HOOKS_DIR:-}/webhook.pid" ]; then kill "$(cat "$HOOKS_DIR/webhook.pid")" 2> /dev/null || true; fi
	e2e_teardown_suite
}

# NAME's FIELD in `bento status --json`.
status_field() {
	bento status --json 2> /dev/null | jq -r --arg name "$1" --arg field "$2" '.[] | select(.name == $name) | .[$field]'
}

# Every file of NAME's logs/ but its heartbeat: name, size, mtime.
logs_but_heartbeat() {
	find "$E2E_CHROOT/$1/logs" -mindepth 1 -maxdepth 1 ! -name heartbeat -printf '%f %s %T@\n' | sort
}

# Sets every file of NAME's logs/ back by SPAN (a `date -d` span): the
# machine stopped that long ago; its configuration was published an hour
# before that.
stop_machine_since() {
	find "$E2E_CHROOT/$1/logs" -mindepth 1 -maxdepth 1 -type f -exec touch -m -d "$2 ago" {} +
	touch -m -d "$2 ago - 1 hour" "$E2E_CHROOT/$1/last_change_date"
}

posts() {
	grep -c . "$HOOKS_DIR/posts" || true
}

command_runs() {
	grep -c . "$HOOKS_DIR/command-runs" 2> /dev/null || true
}

@test "an idle poll moves 'seen' and changes nothing else on the server" {
	seen=$(status_field "$A" lastSeen)
	[ "$seen" != null ] || fail "$A has never been seen"
	before=$(bento status --json 2> /dev/null | jq -S --arg name "$A" '.[] | select(.name == $name) | del(.lastSeen)')
	logs=$(logs_but_heartbeat "$A")
	published=$(find -L "$E2E_CHROOT/$A" -path "$E2E_CHROOT/$A/logs" -prune -o -printf '%p %s %T@\n' | sort)
	sleep 1
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	after=$(status_field "$A" lastSeen)
	[[ "$after" > "$seen" ]] || fail "seen did not move: $seen, then $after"
	assert_eq "$(bento status --json 2> /dev/null | jq -S --arg name "$A" '.[] | select(.name == $name) | del(.lastSeen)')" "$before" "the rest of the status"
	assert_eq "$(logs_but_heartbeat "$A")" "$logs" "logs/ but the heartbeat"
	assert_eq "$(find -L "$E2E_CHROOT/$A" -path "$E2E_CHROOT/$A/logs" -prune -o -printf '%p %s %T@\n' | sort)" "$published" "what is published"
	run -0 bento status --once
	assert_match "$output" "$A .* up to date 💚 +[0-9]+s ago "
}

@test "a machine that stops is silent after SILENT_AFTER: status says so and exits 2; its next poll ends it" {
	run -0 bento status --once
	stop_machine_since "$A" '61 minutes'
	run -2 bento status --once
	assert_match "$output" "$A .* silent 💤 +1h 1m ago "
	assert_eq "$(status_field "$A" silent)" true "silent in --json"
	assert_eq "$(status_field "$B" silent)" false "the other machine"
	run -0 e2e_machine "$A"
	run -0 bento status --once
	assert_eq "$(status_field "$A" state)" up-to-date "state after it polled again"
}

@test "a rollback made by hand on the machine is drift, shown beside the state, until the next configuration" {
	e2e_new_revision "$A"
	e2e_deploy
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to"
	new=$(e2e_current_system "$A")
	assert_eq "$(status_field "$A" drift)" false "drift after bento's own switch"
	printf 'nixos-rebuild switch --rollback\n' > "$E2E_STATE/by-hand.sh"
	run -0 e2e_machine "$A" "$E2E_STATE/by-hand.sh"
	[ "$(e2e_current_system "$A")" != "$new" ] || fail "the rollback by hand did not change the running system"
	# Not seen yet: the server knows nothing of it until the next poll.
	assert_eq "$(status_field "$A" drift)" false "drift before the machine polled"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(status_field "$A" drift)" true "drift after the poll"
	assert_eq "$(status_field "$A" running)" "$(basename "$(e2e_current_system "$A")")" "running in --json"
	run -0 bento status --once
	assert_match "$output" "$A .* up to date 💚 · drift "
	# The next configuration puts it back.
	e2e_new_revision "$A"
	e2e_deploy
	run -0 e2e_machine "$A"
	assert_eq "$(status_field "$A" drift)" false "drift after the next switch"
}

@test "a failure reaches the webhook and the command once, nothing the next run, once more on recovery" {
	run -0 bento notify
	assert_contains "$output" "first run"
	assert_eq "$(posts)" 0 "POSTs after the first run"
	printf '%s\n' 'echo "e2e: this build fails on purpose" >&2' 'exit 1' > "$E2E_FLEET/hosts/$B/build-extra.sh"
	e2e_new_revision "$B"
	e2e_deploy
	run -1 e2e_machine "$B"
	run -0 bento notify
	assert_eq "$(posts)" 1 "POSTs after the failure"
	assert_eq "$(command_runs)" 1 "command runs after the failure"
	assert_match "$(cat "$HOOKS_DIR/posts")" "^POST /hooks/T0KEN .*\"text\":\"bento: $B failing\""
	assert_match "$(cat "$HOOKS_DIR/command-runs")" "\"to\":\"failing\""
	assert_not_contains "$output" "T0KEN"
	run -0 bento notify
	assert_eq "$(posts)" 1 "POSTs after a run with nothing new"
	assert_eq "$(command_runs)" 1 "command runs after a run with nothing new"
	rm "$E2E_FLEET/hosts/$B/build-extra.sh"
	e2e_new_revision "$B"
	e2e_deploy
	run -0 e2e_machine "$B"
	run -0 bento notify
	assert_eq "$(posts)" 2 "POSTs after the recovery"
	assert_eq "$(command_runs)" 2 "command runs after the recovery"
	assert_match "$(tail -n 1 "$HOOKS_DIR/posts")" "\"text\":\"bento: $B recovered \\(up-to-date\\)\""
}
