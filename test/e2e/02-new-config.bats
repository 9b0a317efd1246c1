#!/usr/bin/env bats
# A new configuration: downloaded, verified against the manifest, built,
# switched to, and reported with the real build output (docs/protocol.md §6 steps 3 and 5).

load lib/e2e

setup_file() {
	e2e_setup_suite a b:nonflake
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail
	# Installed as a new machine is: its bootstrap.sh; the timer then runs
	# its /var/bento/update.sh.
	e2e_first_update_or_fail "$A"
}

teardown_file() {
	e2e_teardown_suite
}

@test "flake: a new configuration is downloaded, built, switched to and reported as success" {
	e2e_new_revision "$A"
	e2e_deploy "$A"
	e2e_clear_record "$A"
	expected=$(e2e_expected "$A")
	assert_match "$expected" '^[0-9a-z]{32}-nixos-system-'"$A"'-24\.05$'

	run -0 e2e_machine "$A"
	assert_contains "$output" "a new configuration is available"
	assert_contains "$output" "switching to $expected"

	# The machine runs what the server built, through a new profile generation.
	assert_eq "$(e2e_profile "$A")" "/nix/store/$expected" "system profile"
	assert_eq "$(e2e_generation "$A")" "system-2-link" "profile generation"
	assert_eq "$(e2e_current_system "$A")" "/nix/store/$expected" "/run/current-system"
	record=$(e2e_record "$A")
	assert_contains "$record" "nixos-rebuild build --flake /var/bento#$A --fallback"
	assert_contains "$record" "nixos-rebuild switch --flake /var/bento#$A --fallback"

	# /var/bento holds the published files (utils/ followed), as a git tree
	# tracking the configuration but not bento's own files.
	m=$E2E_MACHINES/$A/var-bento
	for file in flake.nix system.conf utils/bento.nix bento-module.nix bento-units.nix .gitignore .bento-manifest update.sh bootstrap.sh; do
		[ -f "$m/$file" ] || fail "/var/bento/$file is missing"
	done
	[ ! -L "$m/utils" ] || fail "utils/ should arrive as a directory"
	cmp "$m/flake.nix" "$E2E_FLEET/hosts/$A/flake.nix"
	cmp "$m/update.sh" "$E2E_FLEET/generated/systems/$A/update.sh"
	[ ! -e "$m/.bento/previous" ] && [ ! -e "$m/.bento/incoming" ] || fail "the previous configuration or the download is left in .bento/"
	tracked=$(git -C "$m" ls-files)
	assert_contains "$tracked" "flake.nix"
	assert_contains "$tracked" "bento-units.nix"
	assert_contains "$tracked" "bento-module.nix"
	assert_not_contains "$tracked" "update.sh"
	assert_not_contains "$tracked" ".bento"

	# One more log (after the bootstrap's), named as docs/protocol.md §5 says,
	# for the store path states.txt expects, holding the real build output.
	logs=$(e2e_newest_log "$A")
	assert_eq "$(e2e_log_count "$A")" 2 "number of logs"
	assert_match "$logs" "$(e2e_log_name_regex "$A" success)"
	log_store=$(printf '%s\n' "$logs" | cut -d _ -f 2)
	assert_eq "$log_store" "$expected" "store path in the log name"
	text=$(e2e_log_text "$A" _success.log.gz)
	assert_contains "$text" "bento update of $A"
	assert_contains "$text" "building '/nix/store/"
	assert_contains "$text" "e2e: building the system of $A"
	assert_contains "$text" "e2e: built the system of $A"

	run -0 e2e_status_state "$A"
	assert_eq "$output" up-to-date "bento status"
}

@test "non-flake: bootstrap.sh, run by hand on a new machine, does the same" {
	e2e_machine_without_var_bento "$B"
	run -0 e2e_machine "$B" bootstrap
	# It made /var/bento, root's alone.
	assert_eq "$(stat -c '%U %a' "$E2E_MACHINES/$B/var/bento")" "root 700" "/var/bento"
	assert_contains "$output" "switching to"
	record=$(e2e_record "$B")
	assert_contains "$record" "nixos-rebuild build --no-flake -I nixos-config=/var/bento/configuration.nix --fallback"
	assert_contains "$record" "nixos-rebuild switch --no-flake -I nixos-config=/var/bento/configuration.nix --fallback"
	m=$E2E_MACHINES/$B/var-bento
	cmp "$m/configuration.nix" "$E2E_FLEET/hosts/$B/configuration.nix"
	[ ! -d "$m/.git" ] || fail "a configuration without flakes needs no git tree"

	profile=$(e2e_profile "$B")
	assert_match "$profile" "^/nix/store/[0-9a-z]{32}-nixos-system-$B-24\\.05\$"
	assert_eq "$(e2e_log_count "$B")" 1 "number of logs"
	assert_match "$(e2e_logs "$B")" "$(e2e_log_name_regex "$B" success)"
	assert_eq "$(e2e_logs "$B" | cut -d _ -f 2)" "$(basename "$profile")" "store path in the log name"
	assert_contains "$(e2e_log_text "$B" _success.log.gz)" "building '/nix/store/"
	# Not in states.txt (docs/protocol.md §3: flake systems only), so status cannot compare.
	[ -z "$(e2e_expected "$B")" ] || fail "states.txt lists a system without flakes"
	run -0 e2e_status_state "$B"
	assert_eq "$output" up-to-date "bento status"

	# From now on the timer runs the installed update.sh: nothing new.
	run -0 e2e_machine "$B"
	assert_contains "$output" "no update required"
}

@test "a published file that does not match the manifest is not built, and is retried on the next run" {
	e2e_new_revision "$A"
	e2e_deploy
	published=$E2E_CHROOT/$A/config/system.conf
	cp "$published" "$BATS_TEST_TMPDIR/system.conf"
	printf 'tampered\n' >> "$published"
	before=$(e2e_machine_snapshot "$A")
	profile=$(e2e_profile "$A")
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "does not match its manifest"
	assert_contains "$output" "system.conf: FAILED"
	assert_contains "$output" "retried on the next run"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	assert_eq "$(e2e_log_count "$A")" 2 "number of logs"

	# Not remembered as tried: the next run downloads it again.
	run -1 e2e_machine "$A"
	assert_contains "$output" "does not match its manifest"

	cp "$BATS_TEST_TMPDIR/system.conf" "$published"
	run -0 e2e_machine "$A"
	assert_contains "$output" "switching to $(e2e_expected "$A")"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
	assert_eq "$(e2e_log_count "$A")" 3 "number of logs"
}

@test "a partial download (a file missing or unreadable) is not built, and is retried on the next run" {
	e2e_new_revision "$A"
	e2e_deploy
	config=$(readlink -f "$E2E_CHROOT/$A/config")
	profile=$(e2e_profile "$A")
	before=$(e2e_machine_snapshot "$A")
	e2e_clear_record "$A"

	# A file the manifest lists is missing from the download.
	mv "$config/system.conf" "$BATS_TEST_TMPDIR/system.conf"
	run -1 e2e_machine "$A"
	assert_contains "$output" "does not match its manifest"
	assert_contains "$output" "system.conf"

	# The transfer itself fails half-way.
	mv "$BATS_TEST_TMPDIR/system.conf" "$config/system.conf"
	chmod 0600 "$config/system.conf"
	run -1 e2e_machine "$A"
	assert_contains "$output" "downloading the configuration failed"
	assert_contains "$output" "retried on the next run"

	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_machine_snapshot "$A")" "$before" "the machine's files"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"
	[ ! -e "$E2E_MACHINES/$A/var-bento/.bento/state" ] || ! cmp -s "$E2E_MACHINES/$A/var-bento/.bento/state" "$E2E_CHROOT/$A/last_change_date" ||
		fail "a failed download was remembered as tried"

	chmod 0644 "$config/system.conf"
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
}

@test "a configuration replaced on the server during the download is not used" {
	e2e_new_revision "$A"
	e2e_deploy
	stamp=$E2E_CHROOT/$A/last_change_date
	cp -p "$stamp" "$BATS_TEST_TMPDIR/stamp"
	# last_change_date announces another manifest than config/ holds, as when
	# a deploy replaces config/ between the poll and the download.
	printf '%064d %s\n' 0 "$(date -u +%FT%TZ)" > "$stamp"
	profile=$(e2e_profile "$A")
	e2e_clear_record "$A"

	run -1 e2e_machine "$A"
	assert_contains "$output" "changed on the server during the download"
	assert_eq "$(e2e_record "$A")" "" "nixos-rebuild calls"
	assert_eq "$(e2e_profile "$A")" "$profile" "system profile"

	# bento deploy repairs the announcement; the machine then takes it.
	run -0 e2e_deploy
	assert_contains "$output" "completing an interrupted deploy"
	run -0 e2e_machine "$A"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$(e2e_expected "$A")" "system profile"
}
