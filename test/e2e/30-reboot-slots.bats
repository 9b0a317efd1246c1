#!/usr/bin/env bats
# Reboots the fleet can live with (docs/reboots.md, docs/protocol.md §12):
# four machines with the REBOOT flag get a new kernel at once, REBOOT_MAX=1.
# After `bento reboots`, exactly one reboots (the systemctl stand-in records
# it), the next one only once the first reported back and `bento reboots`
# ran again; a slot held by a machine that never comes back expires and goes
# to the next; a machine outside its reboot window never reboots.

load lib/e2e

setup_file() {
	E2E_CONFIG_EXTRA='REBOOT_MAX=1' e2e_setup_suite a b c d
	export A B C D
	A=$(sys a)
	B=$(sys b)
	C=$(sys c)
	D=$(sys d)
	for name in "$A" "$B" "$C" "$D"; do touch "$E2E_FLEET/hosts/$name/REBOOT"; done
	# c's window opens in two hours, for a minute: closed while the suite runs.
	local now from
	now=$(date '+%H %M')
	from=$(((10#${now% *} * 60 + 10#${now#* } + 120) % 1440))
	printf '* %02d:%02d-%02d:%02d\n' $((from / 60)) $((from % 60)) $(((from + 1) % 1440 / 60)) $(((from + 1) % 60)) > "$E2E_FLEET/hosts/$C/REBOOT_WINDOW"
	e2e_deploy_or_fail
	for name in "$A" "$B" "$C" "$D"; do
		e2e_first_update_or_fail "$name"
		boot_into_current "$name"
	done
}

teardown_file() {
	e2e_teardown_suite
}

# As if the machine had rebooted into its system profile.
boot_into_current() {
	ln -sfn "$(e2e_profile "$1")" "$E2E_MACHINES/$1/run/booted-system"
}

# The machines whose chroot holds a reboot slot.
holders() {
	local name
	for name in "$A" "$B" "$C" "$D"; do
		[ ! -f "$E2E_CHROOT/$name/reboot-slot" ] || printf '%s\n' "$name"
	done
}

rebooted() {
	e2e_record "$1" | grep -c '^systemctl kexec' || true
}

@test "a new kernel everywhere: after the switch each machine waits, for a slot or for its window" {
	for name in "$A" "$B" "$C" "$D"; do
		printf '6.2.0\n' > "$E2E_FLEET/hosts/$name/kernel-version"
		e2e_new_revision "$name"
	done
	e2e_deploy
	assert_eq "$(holders)" "" "slots before any machine said it waits"
	for name in "$A" "$B" "$D"; do
		e2e_clear_record "$name"
		run -0 e2e_machine "$name"
		assert_contains "$output" "the kernel changed: waiting for a reboot slot"
		assert_contains "$(cat "$(e2e_heartbeat "$name")")" "reboot-waiting: slot"
		assert_eq "$(rebooted "$name")" 0 "$name rebooted"
	done
	e2e_clear_record "$C"
	run -0 e2e_machine "$C"
	assert_contains "$output" "the kernel changed: waiting for the reboot window"
	assert_contains "$(cat "$(e2e_heartbeat "$C")")" "reboot-waiting: window"
}

@test "bento reboots: exactly one slot; only its holder reboots, at its next poll" {
	run -0 bento reboots
	assert_eq "$(holders)" "$A" "holders (the line is by waiting time, then name)"
	assert_contains "$output" "$A: slot granted"
	for name in "$A" "$B" "$C" "$D"; do
		run -0 e2e_machine "$name"
	done
	assert_eq "$(rebooted "$A")" 1 "a's reboots"
	for name in "$B" "$C" "$D"; do assert_eq "$(rebooted "$name")" 0 "$name's reboots"; done
	run -0 bento status --json --no-cache
	assert_eq "$(jq -r --arg n "$A" '.[] | select(.name == $n) | .rebootSlot' <<< "$output")" holds "a's slot"
	assert_eq "$(jq -r --arg n "$B" '.[] | select(.name == $n) | .rebootSlot' <<< "$output")" waits "b's slot"
}

@test "the next machine reboots only after the first reported back and bento reboots ran again" {
	# a has not booted anew yet: nothing moves, and a does not use its token twice.
	run -0 bento reboots
	assert_eq "$(holders)" "$A" "holders"
	run -0 e2e_machine "$A"
	assert_eq "$(rebooted "$A")" 1 "a's reboots"
	run -0 e2e_machine "$B"
	assert_eq "$(rebooted "$B")" 0 "b's reboots"
	# a comes back: its next poll reports the slot it rebooted with.
	boot_into_current "$A"
	run -0 e2e_machine "$A"
	assert_contains "$(cat "$(e2e_heartbeat "$A")")" "rebooted-with: "
	# The next slot is short (4 s), for the next test to see it expire.
	printf 'REBOOT_SLOT_TIME=4\n' >> "$E2E_FLEET/config.sh"
	run -0 bento reboots
	assert_contains "$output" "$A: slot released (it rebooted and reported back)"
	assert_eq "$(holders)" "$B" "holders"
	run -0 e2e_machine "$B"
	assert_eq "$(rebooted "$B")" 1 "b's reboots"
	assert_eq "$(rebooted "$D")" 0 "d's reboots"
}

@test "a slot held by a machine that never comes back expires and goes to the next" {
	# b rebooted with its slot and is never heard of again.
	jq -r '.slots | keys[]' "$E2E_CHROOT/reboots.json" | grep -qx "$B" || fail "b holds no slot"
	run -0 bento reboots
	assert_eq "$(holders)" "$B" "holders before the slot expired"
	expires=$(date -d "$(jq -r --arg n "$B" '.slots[$n].expiresAt' "$E2E_CHROOT/reboots.json")" +%s)
	while [ "$(date +%s)" -le "$expires" ]; do sleep 1; done
	run -0 bento reboots
	assert_contains "$output" "$B: slot expired"
	assert_eq "$(holders)" "$D" "holders"
	run -0 e2e_machine "$D"
	assert_eq "$(rebooted "$D")" 1 "d's reboots"
}

@test "a machine outside its reboot window never reboots, and status says what it waits for" {
	run -0 e2e_machine "$C"
	assert_contains "$output" "waiting for the reboot window"
	assert_eq "$(rebooted "$C")" 0 "c's reboots"
	run bento status --once --no-cache
	assert_contains "$output" "reboot pending (window * "
}
