#!/usr/bin/env bats
# Prebuilt mode (docs/protocol.md §11, docs/prebuilt.md): the server
# builds, signs and publishes each prebuilt system's closure in its chroot;
# the machine, with a Nix store of its own (an empty directory bound over
# /nix) on which every evaluator and builder fails, downloads only the store
# paths it lacks, imports them with their signatures checked, sets its
# system profile and runs the system's switch-to-configuration, as
# nixos-rebuild does.

load lib/e2e

setup_file() {
	E2E_NOLOCALBUILD=0 e2e_setup_suite p:prebuilt n:prebuilt-nonflake
	export P N
	P=$(sys p)
	N=$(sys n)
	e2e_deploy_or_fail
}

teardown_file() {
	e2e_teardown_suite
}

# Prints a measurement into the TAP output.
measured() {
	printf '# measured: %s\n' "$*" >&3
}

# The store paths of NAME's expected system's closure, in the server's store.
closure() {
	nix-store --query --requisites "/nix/store/$(e2e_expected "$1")" | sort
}

# The pin of NAME's current configuration: the store path whose content,
# signed, is the system that configuration must run (docs/protocol.md §11).
pin_of() {
	cat "$E2E_CHROOT/$1/.cache-$(cut -c 1-16 "$E2E_CHROOT/$1/last_change_date")/pin"
}

# The NAR file (nar/…) and its size of each store path on stdin, from the
# narinfos NAME's current cache holds: "<file> <bytes>" lines, sorted.
nars_of() {
	local cache path
	cache=$E2E_CHROOT/$1/.cache-$(cut -c 1-16 "$E2E_CHROOT/$1/last_change_date")
	while read -r path; do
		sed -n -e 's|^URL: nar/||p' -e 's|^FileSize: ||p' "$cache/$(basename "$path" | cut -c 1-32).narinfo" | paste -d ' ' - -
	done | sort
}

# The NAR files the machine had downloaded when it imported ("<file> <bytes>",
# sorted; the stand-in lists them at each nix copy: the pin's, the system's).
downloaded() {
	e2e_record "$1" | sed -n 's/^downloaded //p' | sort -u
}

bytes_of() {
	awk '{ total += $2 } END { print total + 0 }'
}

switch_record() {
	cat "$E2E_MACHINES/$1/run/switch-to-configuration.record" 2> /dev/null || true
}

assert_never_evaluated() {
	local record
	record=$(e2e_record "$1")
	assert_not_contains "$record" "FORBIDDEN"
	! grep -q '^nixos-rebuild ' <<< "$record" || fail "nixos-rebuild ran:" "$record"
	# Its own store holds no derivation: nothing was evaluated there.
	[ -z "$(find "$E2E_MACHINES/$1/nix/store" -maxdepth 1 -name '*.drv' -print -quit)" ] || fail "a derivation is in the machine's store"
}

@test "flake: a new machine with an empty store imports the system the server built and switches to it, never evaluating" {
	expected=$(e2e_expected "$P")
	assert_match "$expected" '^[0-9a-z]{32}-nixos-system-'"$P"'-24\.05$'
	[ ! -e "$E2E_MACHINES/$P/nix/store" ] || fail "the machine's store is not empty"

	run -0 e2e_machine "$P" bootstrap
	assert_contains "$output" "switching to $expected"

	# The system profile is exactly the store path the server built, in the
	# machine's own store, and switch-to-configuration ran through systemd-run.
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	[ -d "$E2E_MACHINES/$P/nix/store/$expected" ] || fail "the system is not in the machine's own store"
	assert_eq "$(switch_record "$P")" "switch-to-configuration /nix/store/$expected switch NIXOS_INSTALL_BOOTLOADER=0" "switch-to-configuration calls"
	assert_eq "$(e2e_current_system "$P")" "/nix/store/$expected" "/run/current-system"
	record=$(e2e_record "$P")
	assert_contains "$record" "systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER=0 --collect --no-ask-password --pipe --quiet --service-type=exec --unit=nixos-rebuild-switch-to-configuration --wait /nix/store/$expected/bin/switch-to-configuration switch"
	assert_contains "$record" "nix-env -p /nix/var/nix/profiles/system --set /nix/store/$expected"
	assert_contains "$record" "--option trusted-public-keys $(cat "$E2E_BASE/signing/key.pub")"
	assert_never_evaluated "$P"

	# Its store holds the closure and the configuration's pin, nothing else;
	# what it downloaded is the whole closure and the pin.
	pin=$(pin_of "$P")
	assert_match "$pin" "^/nix/store/[0-9a-z]{32}-bento-system-$(cut -c 1-64 "$E2E_CHROOT/$P/last_change_date")\$"
	assert_eq "$(cat "$E2E_MACHINES/$P$pin")" "/nix/store/$expected" "the pin's content, in the machine's store"
	assert_eq "$(find "$E2E_MACHINES/$P/nix/store" -mindepth 1 -maxdepth 1 ! -name .links -printf '/nix/store/%f\n' | sort)" "$({ closure "$P"; echo "$pin"; } | sort)" "the machine's store"
	assert_eq "$(downloaded "$P")" "$({ closure "$P"; echo "$pin"; } | nars_of "$P")" "NAR files downloaded"
	measured "first update of $P: $(closure "$P" | wc -l) store paths, $(downloaded "$P" | bytes_of) bytes of NARs"

	# Reported as usual, and status compares.
	assert_match "$(e2e_logs "$P")" "$(e2e_log_name_regex "$P" success)"
	assert_eq "$(e2e_logs "$P" | cut -d _ -f 2)" "$expected" "store path in the log name"
	assert_contains "$(e2e_log_text "$P" _success.log.gz)" "signed by bento-"
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"

	run -0 e2e_machine "$P"
	assert_contains "$output" "no update required"
}

@test "a one-package change downloads that package's NAR and the new system's, not the closure" {
	old_closure=$(closure "$P")
	full=$(printf '%s\n' "$old_closure" | nars_of "$P" | bytes_of)
	e2e_bump_package "$P"
	e2e_deploy
	expected=$(e2e_expected "$P")
	new_paths=$(comm -13 <(printf '%s\n' "$old_closure") <(closure "$P"))
	assert_eq "$(printf '%s\n' "$new_paths" | wc -l)" 2 "new store paths (pkg-b and the system)"
	assert_contains "$new_paths" "-pkg-b-2"
	e2e_clear_record "$P"
	logins=$(e2e_accepted)

	run -0 e2e_machine "$P"
	# pkg-b's, the system's, and the new configuration's pin.
	assert_contains "$output" "downloading 3 NAR files"
	# The poll, the configuration, the narinfos and the NARs share one SSH
	# connection; the log goes up in a second one, as for other machines.
	assert_eq $(($(e2e_accepted) - logins)) 2 "SSH logins of the update"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	assert_contains "$(switch_record "$P")" "switch-to-configuration /nix/store/$expected switch"
	assert_never_evaluated "$P"

	# Exactly the NARs of the changed paths and the pin crossed the wire.
	assert_eq "$(downloaded "$P")" "$(printf '%s\n%s\n' "$new_paths" "$(pin_of "$P")" | nars_of "$P")" "NAR files downloaded"
	second=$(downloaded "$P" | bytes_of)
	new_full=$(closure "$P" | nars_of "$P" | bytes_of)
	measured "one-package change: $second bytes of NARs downloaded; the whole closure is $new_full bytes (first update: $full)"
	[ "$second" -lt $((new_full / 2)) ] || fail "downloaded $second bytes of a $new_full-byte closure"
	assert_contains "$output" "downloading 3 NAR files ($second bytes)"
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"
}

@test "non-flake: bootstrap.sh imports the system built from configuration.nix on the server" {
	e2e_machine_without_var_bento "$N"
	expected=$(e2e_expected "$N")
	# A prebuilt system runs exactly what was built: states.txt names it, flake or not.
	assert_match "$expected" '^[0-9a-z]{32}-nixos-system-'"$N"'-24\.05$'

	run -0 e2e_machine "$N" bootstrap
	assert_eq "$(e2e_profile "$N")" "/nix/store/$expected" "system profile"
	assert_eq "$(switch_record "$N")" "switch-to-configuration /nix/store/$expected switch NIXOS_INSTALL_BOOTLOADER=0" "switch-to-configuration calls"
	assert_never_evaluated "$N"
	cmp "$E2E_MACHINES/$N/var/bento/configuration.nix" "$E2E_FLEET/hosts/$N/configuration.nix"
	assert_eq "$(e2e_status_state "$N")" up-to-date "bento status"
}

@test "without systemd-run, switch-to-configuration runs directly with a clean environment" {
	e2e_new_revision "$P"
	e2e_deploy
	e2e_clear_record "$P"
	: > "$E2E_MACHINES/$P/run/switch-to-configuration.record"
	touch "$E2E_MACHINES/$P/hooks/systemd-run-broken"
	run -0 e2e_machine "$P"
	rm -f "$E2E_MACHINES/$P/hooks/systemd-run-broken"
	assert_eq "$(switch_record "$P")" "switch-to-configuration /nix/store/$(e2e_expected "$P") switch NIXOS_INSTALL_BOOTLOADER=0" "switch-to-configuration calls"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$(e2e_expected "$P")" "system profile"
}

@test "the server lost after the switch: back to the previous system, without nixos-rebuild, reported as rollback" {
	previous=$(e2e_profile "$P")
	e2e_new_revision "$P"
	e2e_deploy
	expected=$(e2e_expected "$P")
	e2e_clear_record "$P"
	: > "$E2E_MACHINES/$P/run/switch-to-configuration.record"
	e2e_stop_sshd_hook "$P" after-activation

	run -1 e2e_machine "$P"
	e2e_clear_hooks "$P"
	e2e_start_sshd
	assert_contains "$output" "rolling back"
	assert_eq "$(e2e_profile "$P")" "$previous" "system profile"
	assert_eq "$(switch_record "$P")" "$(printf 'switch-to-configuration /nix/store/%s switch NIXOS_INSTALL_BOOTLOADER=0\nswitch-to-configuration %s switch NIXOS_INSTALL_BOOTLOADER=0' "$expected" "$previous")" "switch-to-configuration calls"
	# Back to the generation that ran before, the one it leaves deleted (and
	# so gone from the boot menu the switch back installed).
	generation=$(e2e_generation "$P")
	generation=${generation#system-}
	assert_contains "$(e2e_record "$P")" "nix-env -p /nix/var/nix/profiles/system --switch-generation ${generation%-link}"
	assert_contains "$(e2e_record "$P")" "nix-env -p /nix/var/nix/profiles/system --delete-generations $((${generation%-link} + 1))"
	assert_not_contains "$(e2e_boot_entries "$P")" "$expected"
	assert_never_evaluated "$P"

	# The next run sends the rollback log; the configuration is not retried.
	run -0 e2e_machine "$P"
	assert_contains "$output" "no update required"
	assert_match "$(e2e_newest_log "$P")" "$(e2e_log_name_regex "$P" rollback)"
	assert_eq "$(e2e_status_state "$P")" rollbacked "bento status"
}

@test "REBOOT: a new kernel makes a prebuilt machine reboot after its switch" {
	touch "$E2E_FLEET/hosts/$P/REBOOT"
	printf '6.6.0\n' > "$E2E_FLEET/hosts/$P/kernel-version"
	e2e_new_revision "$P"
	e2e_deploy
	ln -sfn "$(e2e_profile "$P")" "$E2E_MACHINES/$P/run/booted-system"
	e2e_clear_record "$P"
	run -0 e2e_machine "$P"
	assert_contains "$output" "the kernel changed: rebooting"
	assert_contains "$(e2e_record "$P")" "systemctl kexec"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$(e2e_expected "$P")" "system profile"
	assert_never_evaluated "$P"
}
