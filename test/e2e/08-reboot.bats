#!/usr/bin/env bats
# The REBOOT flag (docs/protocol.md §6 step 6): after a success that changed the kernel,
# initrd or kernel modules, `systemctl kexec || systemctl reboot`, after the
# log is uploaded; not when they are unchanged; never without the flag.

load lib/e2e

setup_file() {
	e2e_setup_suite a b
	export A B
	A=$(sys a)
	B=$(sys b)
	touch "$E2E_FLEET/hosts/$A/REBOOT"
	e2e_deploy_or_fail
	for name in "$A" "$B"; do
		e2e_first_update_or_fail "$name"
		boot_into_current "$name"
	done
}

teardown_file() {
	e2e_teardown_suite
}

setup() {
	e2e_clear_hooks "$A"
	e2e_clear_record "$A"
	e2e_clear_record "$B"
	# What the server holds when systemctl is asked to reboot.
	e2e_hook "$A" systemctl "ls \"$E2E_CHROOT/$A/logs\" > \"$E2E_MACHINES/$A/logs-at-reboot\""
}

# As if the machine had rebooted into its current system.
boot_into_current() {
	ln -sfn "$(e2e_profile "$1")" "$E2E_MACHINES/$1/run/booted-system"
}

@test "a new kernel: systemctl kexec, once the success log is on the server" {
	[ -f "$E2E_MACHINES/$A/var-bento/REBOOT" ] || fail "REBOOT was not published"
	booted=$(readlink -f "$E2E_MACHINES/$A/run/booted-system/kernel")
	printf '6.2.0\n' > "$E2E_FLEET/hosts/$A/kernel-version"
	e2e_new_revision "$A"
	e2e_deploy

	run -0 e2e_machine "$A"
	assert_contains "$output" "the kernel changed: rebooting"
	new=$(e2e_profile "$A")
	assert_eq "$new" "/nix/store/$(e2e_expected "$A")" "system profile"
	[ "$(readlink -f "$new/kernel")" != "$booted" ] || fail "the kernel did not change"
	record=$(e2e_record "$A")
	assert_contains "$record" "systemctl kexec"
	assert_not_contains "$record" "systemctl reboot"
	assert_contains "$(cat "$E2E_MACHINES/$A/logs-at-reboot")" "_$(basename "$new")_success.log.gz"
}

@test "kexec refused: systemctl reboot" {
	boot_into_current "$A"
	printf '6.3.0\n' > "$E2E_FLEET/hosts/$A/kernel-version"
	e2e_new_revision "$A"
	e2e_deploy
	# shellcheck disable=SC2016 # expanded by the hook
	e2e_hook "$A" systemctl '[ "$1" != kexec ]'

	run -0 e2e_machine "$A"
	record=$(e2e_record "$A")
	assert_contains "$record" "systemctl kexec"
	assert_contains "$record" "systemctl reboot"
}

@test "kernel, initrd and modules unchanged: no reboot" {
	boot_into_current "$A"
	e2e_new_revision "$A"
	e2e_deploy

	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	assert_contains "$output" "kernel, initrd and modules are unchanged: no reboot needed"
	assert_not_contains "$(e2e_record "$A")" "systemctl kexec"
	assert_not_contains "$(e2e_record "$A")" "systemctl reboot"
}

@test "a new kernel on a machine without REBOOT: no reboot" {
	[ ! -e "$E2E_MACHINES/$B/var-bento/REBOOT" ] || fail "REBOOT should not be there"
	printf '6.2.0\n' > "$E2E_FLEET/hosts/$B/kernel-version"
	e2e_new_revision "$B"
	e2e_deploy

	run -0 e2e_machine "$B"
	assert_contains "$output" "switching to $(e2e_expected "$B")"
	assert_not_contains "$output" "rebooting"
	assert_not_contains "$(e2e_record "$B")" "systemctl kexec"
	assert_not_contains "$(e2e_record "$B")" "systemctl reboot"
}

@test "REBOOT with a build that fails: no reboot" {
	boot_into_current "$A"
	printf '7.0.0\n' > "$E2E_FLEET/hosts/$A/kernel-version"
	printf 'exit 1\n' > "$E2E_FLEET/hosts/$A/build-extra.sh"
	e2e_new_revision "$A"
	e2e_deploy

	run -1 e2e_machine "$A"
	assert_not_contains "$(e2e_record "$A")" "systemctl kexec"
	assert_not_contains "$(e2e_record "$A")" "systemctl reboot"
	rm "$E2E_FLEET/hosts/$A/build-extra.sh"
}
