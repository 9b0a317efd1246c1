#!/usr/bin/env bats
# Staged rollouts with the real client cycle (docs/protocol.md §10): waves
# `canary,nf` (a flake and a system without a flake) then `*` (three
# machines). A new configuration reaches the canary only; once the canary
# reported success, `bento rollout advance` publishes it to the rest. A
# canary whose build fails, or whose health check fails after its switch,
# halts the rollout and the others never see it. An abort or a revert holds
# until a new configuration is deployed; only a success log for the exact
# configuration a wave was given passes it.

load lib/e2e

setup_file() {
	e2e_setup_suite canary a b c nf:nonflake
	export CANARY A B C NF
	CANARY=$(sys canary)
	NF=$(sys nf)
	A=$(sys a)
	B=$(sys b)
	C=$(sys c)
	printf 'ROLLOUT_WAVES="%s,%s *"\nROLLOUT_WAIT=1h\n' "$CANARY" "$NF" >> "$E2E_FLEET/config.sh"
	bento deploy --all > "$E2E_STATE/deploy.out" 2>&1 || fail "bento deploy --all failed:" "$(cat "$E2E_STATE/deploy.out")"
	local name
	for name in $CANARY $A $B $C $NF; do e2e_first_update_or_fail "$name"; done
}

teardown_file() {
	e2e_teardown_suite
}

# What a machine's chroot shows it: its config link and last_change_date.
published() {
	printf '%s %s\n' "$(readlink "$E2E_CHROOT/$1/config")" "$(stat -c %Y:%s "$E2E_CHROOT/$1/last_change_date")"
}

new_revision_everywhere() {
	local name
	for name in $CANARY $A $B $C; do e2e_new_revision "$name"; done
}

@test "a new configuration reaches the canary only; after its success, advance publishes it to the others, who update" {
	new_revision_everywhere
	local before_a before_b before_c states_a
	before_a=$(published "$A")
	before_b=$(published "$B")
	before_c=$(published "$C")
	states_a=$(e2e_expected "$A")
	run -0 bento deploy
	assert_contains "$output" "deploy: 1 published, 1 unchanged, 0 failed, 3 waiting for a later wave"
	assert_eq "$(published "$A")" "$before_a" "$A's chroot"
	assert_eq "$(published "$B")" "$before_b" "$B's chroot"
	assert_eq "$(published "$C")" "$before_c" "$C's chroot"
	assert_eq "$(e2e_expected "$A")" "$states_a" "$A's states.txt line"

	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	run -0 bento rollout advance
	assert_contains "$output" "waiting for $CANARY"

	run -0 e2e_machine "$CANARY"
	assert_contains "$output" "switching to $(e2e_expected "$CANARY")"
	# The health gate asked systemd for failed units, as on any NixOS machine.
	assert_contains "$(e2e_record "$CANARY")" "systemctl --failed"
	run -0 bento rollout advance
	assert_contains "$output" "wave 2 (*) published"
	local name
	for name in $A $B $C; do
		run -0 e2e_machine "$name"
		assert_contains "$output" "switching to $(e2e_expected "$name")"
		assert_eq "$(e2e_profile "$name")" "/nix/store/$(e2e_expected "$name")" "$name's system profile"
	done
	run -0 bento rollout advance
	assert_contains "$output" "rollout done"
	for name in $CANARY $A $B $C; do
		run -0 e2e_status_state "$name"
		assert_eq "$output" up-to-date "$name in bento status"
	done
}

@test "the canary's build fails: advance halts naming it, the others' chroots stay untouched, status shows the halt" {
	printf '%s\n' 'echo "e2e: the canary breaks" >&2' 'exit 1' > "$E2E_FLEET/hosts/$CANARY/build-extra.sh"
	new_revision_everywhere
	local before_a before_b before_c
	before_a=$(published "$A")
	before_b=$(published "$B")
	before_c=$(published "$C")
	run -0 bento deploy
	run -1 e2e_machine "$CANARY"
	assert_contains "$output" "the build failed"
	run -1 bento rollout advance
	assert_contains "$output" "rollout halted at wave 1 ($CANARY,$NF): $CANARY reported a failure or a rollback"
	assert_eq "$(published "$A")" "$before_a" "$A's chroot"
	assert_eq "$(published "$B")" "$before_b" "$B's chroot"
	assert_eq "$(published "$C")" "$before_c" "$C's chroot"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	run -2 bento status --once
	assert_contains "$output" "rollout HALTED at wave 1 of 2"
	assert_match "$output" "$A +.*rollout pending"
	rm "$E2E_FLEET/hosts/$CANARY/build-extra.sh"
}

@test "the canary's health check fails after its switch: it rolls back by itself, reports it, and the rollout halts" {
	printf '%s\n' 'echo "e2e: the app does not answer"' 'exit 1' > "$E2E_FLEET/hosts/$CANARY/health-check"
	printf 'timeout=5\ngrace=0\n' > "$E2E_FLEET/hosts/$CANARY/health.conf"
	new_revision_everywhere
	local before before_a
	before=$(e2e_profile "$CANARY")
	before_a=$(published "$A")
	run -0 bento deploy
	run -1 e2e_machine "$CANARY"
	assert_contains "$output" "the new system is not healthy (the health check failed"
	assert_eq "$(e2e_profile "$CANARY")" "$before" "$CANARY's system profile after its rollback"
	local log
	log=$(e2e_log_text "$CANARY" _rollback.log.gz)
	assert_contains "$log" "e2e: the app does not answer"
	assert_contains "$log" "the new system is not healthy: the health check failed"
	run -1 bento rollout advance
	assert_contains "$output" "$CANARY reported a failure or a rollback for the new configuration"
	assert_eq "$(published "$A")" "$before_a" "$A's chroot"
	rm "$E2E_FLEET/hosts/$CANARY/health-check" "$E2E_FLEET/hosts/$CANARY/health.conf"
}

@test "a health check that fails at first and passes within the grace period: no rollback, a success, the rollout goes on" {
	local count=$BATS_TEST_TMPDIR/health-checks
	# Fails the first time it runs, passes the next.
	printf '%s\n' "n=\$(cat '$count' 2> /dev/null || echo 0)" "echo \$((n + 1)) > '$count'" \
		"[ \"\$n\" -ge 1 ] || { echo 'e2e: still starting'; exit 1; }" > "$E2E_FLEET/hosts/$CANARY/health-check"
	printf 'timeout=5\ngrace=60\n' > "$E2E_FLEET/hosts/$CANARY/health.conf"
	new_revision_everywhere
	run -0 bento deploy
	run -0 e2e_machine "$CANARY"
	assert_contains "$output" "not healthy yet (the health check failed"
	assert_eq "$(cat "$count")" 2 "health checks run"
	assert_eq "$(e2e_profile "$CANARY")" "/nix/store/$(e2e_expected "$CANARY")" "$CANARY's system profile"
	assert_contains "$(e2e_log_text "$CANARY" _success.log.gz)" "e2e: still starting"
	run -0 bento rollout advance
	assert_contains "$output" "wave 2 (*) published"
	rm "$E2E_FLEET/hosts/$CANARY/health-check" "$E2E_FLEET/hosts/$CANARY/health.conf"
}

@test "with systemd, a unit that fails after the switch makes the new system unhealthy: rollback, and the log names the unit" {
	printf 'grace=0\n' > "$E2E_FLEET/hosts/$CANARY/health.conf"
	printf 'e2e-app.service\n' > "$E2E_FLEET/hosts/$CANARY/failed-units"
	new_revision_everywhere
	local before
	before=$(e2e_profile "$CANARY")
	run -0 bento deploy
	run -1 e2e_machine "$CANARY"
	assert_contains "$output" "the new system is not healthy (units failed since the switch: e2e-app.service)"
	assert_eq "$(e2e_profile "$CANARY")" "$before" "$CANARY's system profile after its rollback"
	assert_contains "$(e2e_record "$CANARY")" "systemctl --failed"
	run -1 bento rollout advance
	assert_contains "$output" "$CANARY reported a failure or a rollback"
	rm "$E2E_FLEET/hosts/$CANARY/health.conf" "$E2E_FLEET/hosts/$CANARY/failed-units"
}

# The chroots of A, B and C as their machines see them.
published_later_waves() {
	published "$A"
	published "$B"
	published "$C"
}

@test "abort holds the waves that waited: a deploy with nothing new publishes nothing, even after the canary succeeded" {
	# A takes what the earlier tests published for it: from now on it sees what changes.
	run -0 e2e_machine "$A"
	new_revision_everywhere
	run -0 bento deploy
	local before
	before=$(published_later_waves)
	run -0 bento rollout abort
	assert_contains "$output" "keep their current configuration"

	# Nothing new: the held waves stay held (today's bug: wave 2 went out, no canary).
	run -0 bento deploy
	assert_not_contains "$output" "rollout started"
	assert_contains "$output" "$A: held back by the rollout aborted"
	assert_eq "$(published_later_waves)" "$before" "the chroots of wave 2"
	run -0 bento rollout advance
	assert_contains "$output" "was aborted"
	assert_eq "$(published_later_waves)" "$before" "the chroots of wave 2"

	# The canary applies its new configuration and reports success: the abort still holds.
	run -0 e2e_machine "$CANARY"
	assert_contains "$output" "switching to $(e2e_expected "$CANARY")"
	run -0 bento deploy
	assert_not_contains "$output" "rollout started"
	assert_eq "$(published_later_waves)" "$before" "the chroots of wave 2"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
}

@test "abort --revert of the second wave gives it its previous configuration, and a deploy with nothing new does not publish it again" {
	new_revision_everywhere
	local old_a
	old_a=$(readlink "$E2E_CHROOT/$A/config")
	run -0 bento deploy
	run -0 e2e_machine "$CANARY"
	run -0 bento rollout advance
	assert_contains "$output" "wave 2 (*) published"
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"

	run -0 bento rollout abort --revert
	assert_contains "$output" "reverted to the previous configuration"
	assert_eq "$(readlink "$E2E_CHROOT/$A/config")" "$old_a" "$A's config link after the revert"
	local reverted
	reverted=$(published_later_waves)

	# Nothing new: the reverted wave stays reverted (today's bug: it was published again).
	run -0 bento deploy
	assert_not_contains "$output" "rollout started"
	assert_contains "$output" "$A: held back by the rollout aborted"
	assert_eq "$(published_later_waves)" "$reverted" "the chroots of wave 2"
	# A goes back to its previous system, and stays there.
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	run -0 bento deploy
	assert_eq "$(published_later_waves)" "$reverted" "the chroots of wave 2"
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
}

@test "a canary without a flake: the success it queued for an earlier configuration does not pass its wave, its success for the new one does" {
	# nf applies a configuration while its logs/ is not writable: its success log stays queued on the machine.
	e2e_new_revision "$NF"
	run -0 bento deploy
	chown root "$E2E_CHROOT/$NF/logs"
	run -0 e2e_machine "$NF"
	chown "$NF" "$E2E_CHROOT/$NF/logs"
	assert_contains "$output" "the server answers but did not take the log"
	local queued
	queued=$(find "$E2E_MACHINES/$NF/var-bento/.bento/pending" -name '*_success.log.gz' -printf '%f\n')
	[ -n "$queued" ] || fail "no success log queued on $NF"

	# A new configuration for nf and a: nf's wave is published, a's staged.
	e2e_new_revision "$NF"
	e2e_new_revision "$A"
	run -0 bento deploy
	assert_contains "$output" "rollout started: wave 1 ($CANARY,$NF) published to $NF"
	local before_a
	before_a=$(published "$A")

	# nf's next run sends the queued log when it polls, then builds the new
	# configuration: the server's advance runs while it builds (a timer).
	local gate=$BATS_TEST_TMPDIR/gate
	mkdir -p "$gate"
	e2e_hook "$NF" before-build "touch '$gate/building'; i=0; while [ ! -e '$gate/go' ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i + 1)); done"
	e2e_machine "$NF" > "$gate/run.out" 2>&1 &
	local machine=$! i=0
	until [ -e "$gate/building" ]; do
		i=$((i + 1))
		if [ "$i" -ge 1200 ] || ! kill -0 "$machine" 2> /dev/null; then
			touch "$gate/go"
			wait "$machine" || true
			fail "$NF did not start its build:" "$(cat "$gate/run.out")"
		fi
		sleep 0.1
	done
	[ -f "$E2E_CHROOT/$NF/logs/$queued" ] || { touch "$gate/go"; wait "$machine"; fail "the queued log $queued did not reach the server"; }
	run bento rollout advance
	touch "$gate/go"
	wait "$machine" || fail "$NF's run failed:" "$(cat "$gate/run.out")"
	e2e_clear_hooks "$NF"
	assert_eq "$status" 0 "the advance's exit status"
	assert_contains "$output" "waiting for $NF"
	assert_not_contains "$output" "wave 2 (*) published"
	assert_eq "$(published "$A")" "$before_a" "$A's chroot while $NF builds"

	# The log of the run that applied the new configuration says so: it passes the wave.
	assert_contains "$(cat "$gate/run.out")" "switching to"
	assert_contains "$(e2e_log_text "$NF" _success.log.gz)" "protocol: $(e2e_protocol_version)"
	run -0 bento rollout advance
	assert_contains "$output" "wave 2 (*) published: $A"
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
}

@test "a machine that leaves the fleet during a rollout: the wave neither waits for it nor publishes it again" {
	e2e_new_revision "$CANARY"
	e2e_new_revision "$B"
	e2e_new_revision "$C"
	run -0 bento deploy
	assert_contains "$output" "rollout started: wave 1 ($CANARY,$NF) published to $CANARY"
	assert_contains "$output" "$C: staged for wave 2"

	rm -rf "${E2E_FLEET:?}/hosts/$C"
	run -0 bento deploy
	assert_contains "$output" "$C: left the fleet"
	assert_contains "$output" "$C: no longer part of the rollout in progress (it left the fleet)"
	[ "$(jq -r --arg c "$C" '.systems | has($c)' "$E2E_CHROOT/rollout.json")" = false ] || fail "rollout.json still lists $C"

	run -0 e2e_machine "$CANARY"
	run -0 bento rollout advance
	# B alone (the names are those of the suite: be2exxxxx-b, …).
	printf '%s\n' "$output" | grep -qxF "wave 2 (*) published: $B" || fail "expected wave 2 published to $B alone, in:" "$output"
	# Nothing announced to the machine that left (today's bug: config and last_change_date came back).
	[ ! -e "$E2E_CHROOT/$C/config" ] || fail "$C's config came back: $(readlink "$E2E_CHROOT/$C/config")"
	[ ! -e "$E2E_CHROOT/$C/last_change_date" ] || fail "$C's last_change_date came back"
	assert_eq "$(e2e_expected "$C")" "" "$C's states.txt line"
}
