#!/usr/bin/env bats
# Two runs at once (the timer and a manual start, or the listen socket): the
# second leaves at once and cleanly; never two builds nor two logs for one
# configuration.

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

setup() {
	e2e_clear_hooks "$A"
	e2e_clear_record "$A"
}

# wait_for FILE: up to 30 s.
wait_for() {
	local i=0
	until [ -e "$1" ]; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || fail "timed out waiting for $1"
		sleep 0.05
	done
}

@test "a second run while the first is building exits 0 at once, touching nothing" {
	e2e_new_revision "$A"
	e2e_deploy
	logs=$(e2e_log_count "$A")
	hooks=$E2E_MACHINES/$A/hooks
	# The first run holds in its build until the test releases it.
	e2e_hook "$A" before-build "touch '$hooks/building'; while [ ! -e '$hooks/release' ]; do sleep 0.05; done"
	e2e_machine "$A" > "$BATS_TEST_TMPDIR/first.out" 2>&1 &
	first=$!
	wait_for "$hooks/building"
	# Positive control of the cleanup's marker: the first run is seen.
	[ -n "$(e2e_leftover_processes)" ] || fail "the running machine's processes carry no BENTO_E2E_RUN mark"

	start=$(date +%s)
	run -0 e2e_machine "$A"
	assert_contains "$output" "another bento update is running; leaving it to finish"
	assert_not_contains "$output" "downloading"
	[ $(($(date +%s) - start)) -le 3 ] || fail "the second run did not leave at once"
	assert_eq "$(grep -c 'nixos-rebuild build' "$E2E_MACHINES/$A/record")" 1 "builds started"

	touch "$hooks/release"
	wait "$first" || fail "the first run failed:" "$(cat "$BATS_TEST_TMPDIR/first.out")"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/first.out")" "switching to $(e2e_expected "$A")"
	assert_eq "$(e2e_log_count "$A")" "$((logs + 1))" "number of logs"
	assert_eq "$(e2e_leftover_processes)" "" "processes left behind"

	# Later runs find nothing new: still one log for this configuration.
	run -0 e2e_machine "$A"
	assert_contains "$output" "no update required"
	assert_eq "$(e2e_log_count "$A")" "$((logs + 1))" "number of logs"
}

@test "three runs started together on a new configuration: one build, one switch, one log" {
	e2e_new_revision "$A"
	e2e_deploy
	logs=$(e2e_log_count "$A")
	pids=()
	for i in 1 2 3; do
		e2e_machine "$A" > "$BATS_TEST_TMPDIR/run$i.out" 2>&1 &
		pids+=("$!")
	done
	for i in 1 2 3; do
		wait "${pids[$((i - 1))]}" || fail "run $i failed:" "$(cat "$BATS_TEST_TMPDIR/run$i.out")"
	done
	record=$(e2e_record "$A")
	assert_eq "$(printf '%s\n' "$record" | grep -c 'nixos-rebuild build')" 1 "builds"
	assert_eq "$(printf '%s\n' "$record" | grep -c 'nixos-rebuild switch')" 1 "switches"
	assert_eq "$(e2e_log_count "$A")" $((logs + 1)) "number of logs"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	all=$(cat "$BATS_TEST_TMPDIR"/run?.out)
	assert_eq "$(printf '%s\n' "$all" | grep -c 'a new configuration is available')" 1 "runs that downloaded"
}
