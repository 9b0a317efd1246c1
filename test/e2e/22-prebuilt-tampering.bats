#!/usr/bin/env bats
# Prebuilt mode, what does not verify (docs/protocol.md §11): a NAR or a
# narinfo altered on the server, a signature by another key, no signature.
# Each time the machine imports nothing it can switch to, switches to
# nothing, reports a failure, and takes the same configuration once the
# server is repaired (a failure to verify is retried, unlike a failed build).

load lib/e2e

setup_file() {
	E2E_NOLOCALBUILD=0 e2e_setup_suite p:prebuilt
	export P
	P=$(sys p)
	e2e_deploy_or_fail
	e2e_first_update_or_fail "$P"
}

teardown_file() {
	e2e_teardown_suite
}

# The published cache of P's current configuration.
cache_dir() {
	printf '%s/%s/.cache-%s\n' "$E2E_CHROOT" "$P" "$(cut -c 1-16 "$E2E_CHROOT/$P/last_change_date")"
}

# A new configuration of P with a one-package change, published; prints nothing.
publish_change() {
	e2e_bump_package "$P"
	e2e_deploy > "$BATS_TEST_TMPDIR/deploy.out" 2>&1 || fail "bento deploy failed:" "$(cat "$BATS_TEST_TMPDIR/deploy.out")"
	e2e_clear_record "$P"
}

# The NAR file (nar/…) of store path $1 in the current cache.
nar_of() {
	sed -n 's/^URL: //p' "$(cache_dir)/$(basename "$1" | cut -c 1-32).narinfo"
}

# edit_bundle SED-SCRIPT: rewrites the bundle of narinfos the machine downloads.
edit_bundle() {
	local bundle
	bundle=$(cache_dir)/narinfos.gz
	gzip -dc "$bundle" | sed "$1" | gzip -c > "$BATS_TEST_TMPDIR/bundle.gz"
	cat "$BATS_TEST_TMPDIR/bundle.gz" > "$bundle"
}

# refused TEXT: the machine's run failed verification: nothing switched or
# installed, a failure log naming the system it still runs, and the
# configuration is not remembered as tried.
refused() {
	local before_profile=$1 before_logs=$2 before_switches=$3 before_files=$4
	run -1 e2e_machine "$P"
	assert_contains "$output" "the prebuilt system does not verify: nothing was switched"
	assert_eq "$(e2e_profile "$P")" "$before_profile" "system profile"
	assert_eq "$(cat "$E2E_MACHINES/$P/run/switch-to-configuration.record")" "$before_switches" "switch-to-configuration calls"
	assert_eq "$(e2e_machine_snapshot "$P" | grep -v '/state ')" "$before_files" "the machine's files"
	assert_eq "$(e2e_log_count "$P")" $((before_logs + 1)) "number of logs"
	assert_match "$(e2e_newest_log "$P")" "^[0-9]{8}-[0-9]{4}_$(basename "$before_profile")_failure\\.log\\.gz\$"
	assert_eq "$(e2e_status_state "$P")" failing "bento status"
	! cmp -s "$E2E_MACHINES/$P/var-bento/.bento/state" "$E2E_CHROOT/$P/last_change_date" || fail "a configuration that did not verify was remembered as tried"
	assert_not_contains "$(e2e_record "$P")" "FORBIDDEN"
}

# Once repaired, the next run takes the same configuration and reports
# success. Status then counts two logs for one configuration, the failure
# and the success: "extra logs", which asks someone to look, as after any
# incident, until the next deploy.
accepted() {
	run -0 e2e_machine "$P"
	assert_contains "$output" "switching to $(e2e_expected "$P")"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$(e2e_expected "$P")" "system profile"
	assert_match "$(e2e_newest_log "$P")" "$(e2e_log_name_regex "$P" success)"
	assert_eq "$(e2e_status_state "$P")" extra-logs "bento status"
}

state_before() {
	profile=$(e2e_profile "$P")
	logs=$(e2e_log_count "$P")
	switches=$(cat "$E2E_MACHINES/$P/run/switch-to-configuration.record")
	files=$(e2e_machine_snapshot "$P" | grep -v '/state ')
}

@test "a NAR altered on the server: refused, a failure reported, taken once repaired" {
	publish_change
	state_before
	nar=$(cache_dir)/$(nar_of "$(nix-store -qR "/nix/store/$(e2e_expected "$P")" | grep -- -pkg-b-)")
	cp "$nar" "$BATS_TEST_TMPDIR/nar"
	printf 'tampered' | dd of="$nar" bs=1 seek=40 conv=notrunc status=none
	refused "$profile" "$logs" "$switches" "$files"
	# Retried on the next run, refused again.
	run -1 e2e_machine "$P"
	assert_contains "$output" "does not verify"
	cat "$BATS_TEST_TMPDIR/nar" > "$nar"
	accepted
}

@test "a narinfo altered on the server (another NAR hash): refused, taken once repaired" {
	publish_change
	state_before
	system=/nix/store/$(e2e_expected "$P")
	other_hash=$(gzip -dc "$(cache_dir)/narinfos.gz" | grep -m 1 -A 10 -- "-pkg-a-1\$" | sed -n 's/^NarHash: //p')
	cp "$(cache_dir)/narinfos.gz" "$BATS_TEST_TMPDIR/original.gz"
	edit_bundle "\\|^StorePath: $system\$|,/^\$/s|^NarHash: .*|NarHash: $other_hash|"
	gzip -dc "$(cache_dir)/narinfos.gz" | grep -q "NarHash: $other_hash" || fail "the test did not alter the narinfo"
	refused "$profile" "$logs" "$switches" "$files"
	assert_contains "$(e2e_log_text "$P" _failure.log.gz)" "lacks a valid signature"
	cat "$BATS_TEST_TMPDIR/original.gz" > "$(cache_dir)/narinfos.gz"
	accepted
}

@test "a signature by another key: refused, taken once repaired" {
	publish_change
	state_before
	system=/nix/store/$(e2e_expected "$P")
	# A valid signature of this very path, by a key the machine does not trust.
	nix-store --generate-binary-cache-key intruder-1 "$BATS_TEST_TMPDIR/intruder.sec" "$BATS_TEST_TMPDIR/intruder.pub"
	nix "${NIX_FLAKES[@]}" copy --to "file://$BATS_TEST_TMPDIR/intruder?secret-key=$BATS_TEST_TMPDIR/intruder.sec" "$system"
	signature=$(sed -n 's/^Sig: //p' "$BATS_TEST_TMPDIR/intruder/$(basename "$system" | cut -c 1-32).narinfo")
	assert_match "$signature" '^intruder-1:'
	cp "$(cache_dir)/narinfos.gz" "$BATS_TEST_TMPDIR/original.gz"
	edit_bundle "\\|^StorePath: $system\$|,/^\$/s|^Sig: .*|Sig: $signature|"
	refused "$profile" "$logs" "$switches" "$files"
	assert_contains "$(e2e_log_text "$P" _failure.log.gz)" "lacks a valid signature"
	cat "$BATS_TEST_TMPDIR/original.gz" > "$(cache_dir)/narinfos.gz"
	accepted
}

@test "no signature at all: refused, taken once repaired" {
	publish_change
	state_before
	cp "$(cache_dir)/narinfos.gz" "$BATS_TEST_TMPDIR/original.gz"
	edit_bundle '/^Sig: /d'
	refused "$profile" "$logs" "$switches" "$files"
	assert_contains "$(e2e_log_text "$P" _failure.log.gz)" "lacks a valid signature"
	cat "$BATS_TEST_TMPDIR/original.gz" > "$(cache_dir)/narinfos.gz"
	accepted
}

@test "a NAR that cannot be downloaded: nothing changes, no failure reported, retried on the next run" {
	publish_change
	state_before
	nar=$(cache_dir)/$(nar_of "$(nix-store -qR "/nix/store/$(e2e_expected "$P")" | grep -- -pkg-b-)")
	chmod 0600 "$nar"
	run -1 e2e_machine "$P"
	chmod 0644 "$nar"
	assert_contains "$output" "downloading the prebuilt system failed; it will be retried on the next run"
	assert_eq "$(e2e_profile "$P")" "$profile" "system profile"
	assert_eq "$(e2e_log_count "$P")" "$logs" "number of logs"
	run -0 e2e_machine "$P"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$(e2e_expected "$P")" "system profile"
	# Nothing was reported before: one log for this configuration.
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"
}

# docs/protocol.md §11: the system a machine must run is signed for the
# configuration it downloaded (the pin), so an older cache copied into the
# newest one (its system, narinfos.gz and narinfos: all signed, by the right
# key, for an older configuration) is refused. The three tests below share
# that replayed cache: the machine refuses it, status does not call it up
# to date, deploy finds it and publishes the cache again.
@test "an older cache's system and narinfos copied into the newest cache: refused with a failure log" {
	old_cache=$(cache_dir)
	old_system=$(cat "$old_cache/system")
	assert_eq "$(e2e_profile "$P")" "$old_system" "system profile before"
	publish_change
	state_before
	new_cache=$(cache_dir)
	[ "$new_cache" != "$old_cache" ] || fail "no new cache"
	[ -d "$old_cache" ] || fail "the previous cache is gone"
	# The older cache copied over the newest: its system and narinfos.gz
	# replace the new ones, its narinfos and NARs join them (those of the
	# paths both closures share are the same files already).
	cp "$old_cache/system" "$old_cache/narinfos.gz" "$new_cache/"
	(cd "$old_cache" && find . -type f \( -name '*.narinfo' -o -path './nar/*' \) -print) | while read -r file; do
		[ -e "$new_cache/$file" ] || cp "$old_cache/$file" "$new_cache/$file"
	done
	refused "$profile" "$logs" "$switches" "$files"
	assert_not_contains "$output" "is already running"
	assert_contains "$output" "signed for this configuration"
	assert_contains "$(e2e_log_text "$P" _failure.log.gz)" "signed for this configuration"
	# Refused again on the next run: it is not remembered as tried.
	run -1 e2e_machine "$P"
	assert_contains "$output" "does not verify"
}

@test "status never says up to date when the store path a success log names is not the expected one" {
	old_system=$(e2e_profile "$P")
	[ "/nix/store/$(e2e_expected "$P")" != "$old_system" ] || fail "the machine already runs the expected system"
	# What today's client uploaded for the replayed cache: one success log
	# since the publication, naming the system the machine still runs.
	find "$E2E_CHROOT/$P/logs" -type f -newer "$E2E_CHROOT/$P/last_change_date" -delete
	printf 'bento: %s is already running\n' "$(basename "$old_system")" |
		gzip -c > "$E2E_CHROOT/$P/logs/$(date -u +%Y%m%d-%H%M)_$(basename "$old_system")_success.log.gz"
	state=$(e2e_status_state "$P")
	[ "$state" != up-to-date ] || fail "bento status --json says up to date; expected $(e2e_expected "$P"), the log names $(basename "$old_system")"
	run bento status --no-cache
	row=$(grep -F -- "$P" <<< "$output")
	[ -n "$row" ] || fail "no row for $P:" "$output"
	assert_not_contains "$row" "up to date"
}

@test "deploy finds the replayed cache and publishes it again; the machine then takes the configuration" {
	expected=$(e2e_expected "$P")
	[ "$(cat "$(cache_dir)/system")" != "/nix/store/$expected" ] || fail "the cache is not the replayed one"
	run -0 e2e_deploy
	assert_contains "$output" "$P: its published files do not match their manifest (.cache-"
	assert_contains "$output" "publishing it again"
	assert_eq "$(cat "$(cache_dir)/system")" "/nix/store/$expected" "the cache's system"
	run -0 e2e_deploy
	assert_contains "$output" "$P: no changes"
	run -0 e2e_machine "$P"
	assert_contains "$output" "switching to $expected"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"
}

@test "an older cache's system alone, or with its pin, copied into the newest cache: refused, each saying why" {
	for copied in 'system' 'system pin narinfos.gz'; do
		old_cache=$(cache_dir)
		publish_change
		state_before
		mkdir -p "$BATS_TEST_TMPDIR/saved"
		for file in $copied; do
			cp "$(cache_dir)/$file" "$BATS_TEST_TMPDIR/saved/$file"
			cp "$old_cache/$file" "$(cache_dir)/$file"
		done
		refused "$profile" "$logs" "$switches" "$files"
		case $copied in
		system) assert_contains "$output" "but the one signed for this configuration is $(e2e_expected "$P")" ;;
		*) assert_contains "$output" "is not the one signed for this configuration (bento-system-$(cut -c 1-64 "$E2E_CHROOT/$P/last_change_date"))" ;;
		esac
		for file in $copied; do cat "$BATS_TEST_TMPDIR/saved/$file" > "$(cache_dir)/$file"; done
		accepted
	done
}

# docs/protocol.md §11: every number the machine reads from the server is
# checked before it computes with it; a bad one is a failure log saying
# which, never a shell error ("Illegal number") that leaves no log.
@test "a bad FileSize in the published narinfos (08, 20 digits, negative, empty): refused with a failure log each time" {
	for size in 08 12345678901234567890 -5 ''; do
		# A new configuration each time (status counts the logs since the
		# publication), taken once repaired (a failure log names the system
		# the machine runs: the next one must not have the same name).
		publish_change
		state_before
		cp "$(cache_dir)/narinfos.gz" "$BATS_TEST_TMPDIR/original.gz"
		edit_bundle "0,/^FileSize: .*/s//FileSize: $size/"
		gzip -dc "$(cache_dir)/narinfos.gz" | grep -qx "FileSize: $size" || fail "the test did not alter a FileSize"
		refused "$profile" "$logs" "$switches" "$files"
		assert_not_contains "$output" "Illegal number"
		assert_contains "$output" "has FileSize '$size': not a number of at most 15 digits without a leading zero"
		assert_contains "$(e2e_log_text "$P" _failure.log.gz)" "has FileSize '$size'"
		cat "$BATS_TEST_TMPDIR/original.gz" > "$(cache_dir)/narinfos.gz"
		accepted
	done
}
