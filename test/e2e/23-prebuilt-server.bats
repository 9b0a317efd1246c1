#!/usr/bin/env bats
# Prebuilt mode on the server (docs/protocol.md §11): the signing key made on
# first use outside the fleet, generated/ and the chroots; NARs shared by
# machines stored once; published systems kept by the server's garbage
# collector; NARs no chroot uses any more removed; a cache removed by hand
# published again; a rotated key taken by the machines.

load lib/e2e

setup_file() {
	E2E_NOLOCALBUILD=0 e2e_setup_suite p:prebuilt q:prebuilt
	export P Q
	P=$(sys p)
	Q=$(sys q)
	e2e_deploy_or_fail
}

teardown_file() {
	e2e_teardown_suite
}

measured() {
	printf '# measured: %s\n' "$*" >&3
}

cache_of() {
	printf '%s/%s/.cache-%s\n' "$E2E_CHROOT" "$1" "$(cut -c 1-16 "$E2E_CHROOT/$1/last_change_date")"
}

# The NAR file (nar/…) of the store path of NAME's system whose name ends with SUFFIX.
nar_of() {
	local path
	path=$(nix-store -qR "/nix/store/$(e2e_expected "$1")" | grep -- "$2\$")
	sed -n 's/^URL: //p' "$(cache_of "$1")/$(basename "$path" | cut -c 1-32).narinfo"
}

POOL() {
	printf '%s/.bento-cache\n' "$E2E_CHROOT"
}

@test "the signing key is made on first use outside the fleet, generated/ and the chroots, and is root's alone" {
	key=$E2E_BASE/signing/key
	assert_eq "$(stat -c '%U %a' "$key")" "root 600" "secret key"
	assert_eq "$(stat -c '%a' "$key.pub")" 644 "public key"
	public=$(cat "$key.pub")
	assert_match "$public" '^bento-[A-Za-z0-9.-]+-[0-9]{8}:[A-Za-z0-9+/]{43}=$'
	secret=$(cut -d : -f 2 "$key")
	# Walk the fleet (generated/ is in it) and CHROOT_DIR: no copy of the secret, no key file.
	for dir in "$E2E_FLEET" "$E2E_FLEET/generated" "$E2E_CHROOT"; do
		! grep -rqF -- "$secret" "$dir" || fail "the secret key is in $dir: $(grep -rlF -- "$secret" "$dir")"
		[ -z "$(find "$dir" -name 'key' -o -name '*.sec' -o -name 'signing-key*')" ] || fail "a key file is in $dir"
	done
	# The public key is what the machines trust: in their scripts and their Nix settings.
	assert_contains "$(cat "$E2E_FLEET/generated/systems/$P/update.sh")" "BENTO_CACHE_KEY=$public"
	assert_contains "$(cat "$E2E_FLEET/generated/client/bento-units.nix")" "serverPublicKey = lib.mkDefault \"$public\";"
	assert_contains "$(cat "$E2E_CHROOT/$P/config/update.sh")" "BENTO_PREBUILT=1"
	# Every narinfo of the pool is signed by it.
	for narinfo in "$(POOL)"/*.narinfo; do
		grep -q "^Sig: ${public%%:*}:" "$narinfo" || fail "$narinfo is not signed by the server's key"
	done
	# The pool is root's alone; each machine's cache is readable by the machines only.
	assert_eq "$(stat -c '%U:%G %a' "$(POOL)")" "root:root 700" "the pool"
	assert_eq "$(stat -c '%U:%G %a' "$(cache_of "$P")")" "root:sftp_users 750" "a machine's cache"
}

@test "a NAR shared by two machines is stored once: hard links to one file" {
	file=$(nar_of "$P" -pkg-a-1)
	assert_eq "$(nar_of "$Q" -pkg-a-1)" "$file" "pkg-a's NAR in both caches"
	inode=$(stat -c %i "$(POOL)/$file")
	assert_eq "$(stat -c %i "$(cache_of "$P")/$file")" "$inode" "$P's copy"
	assert_eq "$(stat -c %i "$(cache_of "$Q")/$file")" "$inode" "$Q's copy"
	assert_eq "$(stat -c %h "$(POOL)/$file")" 3 "links (the pool and two caches)"
	apparent=$(find "$E2E_CHROOT" -path '*/nar/*' -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
	on_disk=$(du -sb "$(POOL)/nar" "$E2E_CHROOT/$P" "$E2E_CHROOT/$Q" | awk '{ s += $1 } END { print s }')
	measured "NARs as the machines see them: $apparent bytes; on the server's disk (pool and both chroots, du): $on_disk bytes"
}

@test "published systems are GC roots of the server's store" {
	system=/nix/store/$(e2e_expected "$P")
	root=$(POOL)/roots/$P-$(cut -c 1-16 "$E2E_CHROOT/$P/last_change_date")
	assert_eq "$(readlink "$root")" "$system" "the root"
	nix-store --gc --print-roots 2> /dev/null | grep -qxF "$root -> $system" || fail "$root is not a GC root"
	# The collector refuses to delete it (a path no root holds would go).
	run nix-store --delete "$system"
	[ "$status" -ne 0 ] || fail "nix-store --delete removed a published system"
	assert_contains "$output" "alive"
	[ -d "$system" ]
}

@test "NARs no chroot uses any more are removed, with their narinfos and GC roots; the caches of the current and the previous configuration stay" {
	e2e_bump_package "$P"
	e2e_deploy_or_fail
	first_b2=$(cache_of "$P")
	nar_b2=$(nar_of "$P" -pkg-b-2)
	id_b2=$(cut -c 1-16 "$E2E_CHROOT/$P/last_change_date")
	narinfo_b2=$(basename "$(nix-store -qR "/nix/store/$(e2e_expected "$P")" | grep -- -pkg-b-2)" | cut -c 1-32).narinfo
	[ -f "$(POOL)/$nar_b2" ] || fail "pkg-b-2 is not in the pool"
	e2e_bump_package "$P"
	e2e_deploy_or_fail
	# pkg-b-2's cache is the previous one: kept (a machine may be downloading it).
	[ -d "$first_b2" ] || fail "the previous cache was removed"
	e2e_bump_package "$P"
	e2e_deploy_or_fail
	[ ! -e "$first_b2" ] || fail "the cache before the previous one is still there"
	assert_eq "$(find "$E2E_CHROOT/$P" -maxdepth 1 -name '.cache-*' | wc -l)" 2 "caches of $P"
	[ ! -e "$(POOL)/$nar_b2" ] || fail "pkg-b-2's NAR, used by no chroot, is still in the pool"
	[ ! -e "$(POOL)/$narinfo_b2" ] || fail "pkg-b-2's narinfo is still in the pool"
	[ ! -e "$(POOL)/roots/$P-$id_b2" ] || fail "the GC root of a removed cache is still there"
	# pkg-b-1 is still used by the other machine: kept.
	[ -f "$(POOL)/$(nar_of "$Q" -pkg-b-1)" ] || fail "pkg-b-1, still used by $Q, was removed"
	# Every file of the pool is used by some cache, and every file a cache uses is in the pool.
	for file in "$(POOL)"/nar/* "$(POOL)"/*.narinfo; do
		[ "$(stat -c %h "$file")" -gt 1 ] || fail "$file is used by no cache"
	done
	assert_eq "$(find "$(POOL)/roots" -mindepth 1 -printf '%f\n' | sort)" "$(find "$E2E_CHROOT/$P" "$E2E_CHROOT/$Q" -maxdepth 1 -name '.cache-*' -printf '%h %f\n' | sed "s|^$E2E_CHROOT/||; s| .cache-|-|" | sort)" "GC roots"
}

@test "a cache removed from a chroot is published again by the next deploy" {
	rm -rf "$(cache_of "$Q")"
	run -0 e2e_deploy
	assert_contains "$output" "$Q: its published files do not match their manifest (.cache-"
	[ -f "$(cache_of "$Q")/system" ] || fail "the cache was not published again"
	assert_eq "$(cat "$(cache_of "$Q")/system")" "/nix/store/$(e2e_expected "$Q")" "its system"
}

@test "a NAR removed from a chroot's cache is published again by the next deploy, and the machine can update" {
	nar=$(find "$(cache_of "$Q")/nar" -type f | head -n 1)
	[ -n "$nar" ] || fail "no NAR in the cache"
	rm "$nar"
	run -0 e2e_deploy
	assert_contains "$output" "(a NAR of its prebuilt system) is missing"
	[ -f "$nar" ] || fail "the NAR was not published again"
	run -0 e2e_deploy
	assert_contains "$output" "$Q: no changes"
	# Its first installation.
	run -0 e2e_machine "$Q" bootstrap
	assert_eq "$(e2e_profile "$Q")" "/nix/store/$(e2e_expected "$Q")" "system profile"
}

@test "a rotated key: every prebuilt system is published again, signed by the new key, and a machine that trusted the old one takes it" {
	e2e_first_update_or_fail "$Q"
	old=$(cat "$E2E_BASE/signing/key.pub")
	mkdir "$BATS_TEST_TMPDIR/old-key"
	mv "$E2E_BASE/signing/key" "$E2E_BASE/signing/key.pub" "$BATS_TEST_TMPDIR/old-key/"
	e2e_bump_package "$Q"
	run -0 e2e_deploy
	assert_contains "$output" "deploy: 2 published"
	new=$(cat "$E2E_BASE/signing/key.pub")
	[ "$new" != "$old" ] || fail "no new key"
	assert_contains "$(cat "$E2E_CHROOT/$Q/config/update.sh")" "BENTO_CACHE_KEY=$new"
	! gzip -dc "$(cache_of "$Q")/narinfos.gz" | grep '^Sig: ' | grep -qvF "Sig: ${new%%:*}:" || fail "a narinfo is not signed by the new key"

	run -0 e2e_machine "$Q"
	assert_contains "$output" "switching to $(e2e_expected "$Q")"
	assert_contains "$(e2e_record "$Q")" "--option trusted-public-keys $new"
	assert_eq "$(e2e_profile "$Q")" "/nix/store/$(e2e_expected "$Q")" "system profile"
}

@test "a system that is no longer prebuilt loses its caches and GC roots" {
	rm "$E2E_FLEET/hosts/$P/PREBUILT"
	e2e_deploy_or_fail
	assert_contains "$(cat "$E2E_CHROOT/$P/config/update.sh")" "BENTO_PREBUILT=0"
	e2e_new_revision "$P"
	e2e_deploy_or_fail
	assert_eq "$(find "$E2E_CHROOT/$P" -maxdepth 1 -name '.cache-*' | wc -l)" 0 "caches of $P"
	assert_eq "$(find "$(POOL)/roots" -name "$P-*" | wc -l)" 0 "GC roots of $P"
	# Only what Q uses is left in the pool.
	for file in "$(POOL)"/nar/*; do
		[ "$(stat -c %h "$file")" -gt 1 ] || fail "$file is used by no cache"
	done
}
