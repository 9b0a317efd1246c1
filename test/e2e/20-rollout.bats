#!/usr/bin/env bats
# Staged rollouts with the real client cycle (docs/protocol.md §10): waves
# `canary` then `*` (three machines). A new configuration reaches the canary
# only; once the canary reported success, `bento rollout advance` publishes
# it to the rest. A canary whose build fails, or whose health check fails
# after its switch, halts the rollout and the others never see it.

load lib/e2e

setup_file() {
	e2e_setup_suite canary a b c
	export CANARY A B C
	CANARY=$(sys canary)
	A=$(sys a)
	B=$(sys b)
	C=$(sys c)
	printf 'ROLLOUT_WAVES="%s *"\nROLLOUT_WAIT=1h\n' "$CANARY" >> "$E2E_FLEET/config.sh"
	bento deploy --all > "$E2E_STATE/deploy.out" 2>&1 || fail "bento deploy --all failed:" "$(cat "$E2E_STATE/deploy.out")"
	local name
	for name in $CANARY $A $B $C; do e2e_first_update_or_fail "$name"; done
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
	assert_contains "$output" "deploy: 1 published, 0 unchanged, 0 failed, 3 waiting for a later wave"
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
	assert_contains "$output" "rollout halted at wave 1 ($CANARY): $CANARY reported a failure or a rollback"
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
