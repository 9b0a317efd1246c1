#!/bin/sh
# Runs every end-to-end suite (test/e2e/*.bats) with bats, as root: a real
# sshd, real users, real Nix, simulated machines in mount namespaces. Builds
# dist/ first when it is missing or older than the sources. Prints bats'
# output and a summary; exits non-zero when any test fails.
#
#   sh test/e2e/run.sh [bats options] [suite.bats...]
#
# One run at a time (the suites share the group sftp_users, /run/sshd and the
# mount points): a second run waits for the first, whichever checkout it
# comes from (scripts/test-lock.sh). Whatever a suite leaves behind (bats
# killed, ...) is removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "test/e2e/run.sh: the e2e suites need root (users, sshd, mount namespaces)" >&2
	exit 1
fi
for tool in bats /usr/sbin/sshd sftp ssh-keygen nix nix-build nix-env nix-instantiate unshare flock git gzip jq ss node; do
	if ! command -v "$tool" > /dev/null 2>&1; then
		echo "test/e2e/run.sh: $tool is missing (sh scripts/setup.sh installs what the tests need)" >&2
		exit 1
	fi
done
if [ ! -f dist/main.js ] || [ -n "$(find src templates package.json -newer dist/main.js -print -quit)" ]; then
	npm run -s build || exit 1
fi

# Serialise runs, across checkouts too: the machine-wide test lock.
if [ "${BENTO_TEST_LOCK_HELD:-0}" != 1 ]; then
	exec sh "$root/scripts/test-lock.sh" sh "$root/test/e2e/run.sh" "$@"
fi

# The nixpkgs lib the suites evaluate the NixOS modules with
# (test/fixtures/nixos/nixpkgs-lib.nix): found once, said, passed on.
if lib=$(nix-instantiate --eval --strict --json --expr "import $root/test/fixtures/nixos/nixpkgs-lib.nix { }" 2> /dev/null); then
	BENTO_NIXPKGS_LIB=$(printf '%s' "$lib" | jq -r .dir)
	export BENTO_NIXPKGS_LIB
	echo "e2e: nixpkgs lib for the NixOS module tests: $(printf '%s' "$lib" | jq -r .source) ($BENTO_NIXPKGS_LIB)"
else
	echo "e2e: nixpkgs lib for the NixOS module tests: none (no BENTO_NIXPKGS_LIB, no ../shared/nixpkgs-lib, and the pinned fetch failed); the suites that need it fail" >&2
fi

E2E_REGISTRY=$(mktemp /tmp/bento-e2e-registry.XXXXXX)
export E2E_REGISTRY
output=$(mktemp /tmp/bento-e2e-output.XXXXXX)
bats_status=$(mktemp /tmp/bento-e2e-status.XXXXXX)
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	while read -r base; do
		sh "$root/test/e2e/lib/cleanup.sh" "$base"
	done < "$E2E_REGISTRY"
	rm -f "$E2E_REGISTRY" "$output" "$bats_status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ $# -eq 0 ]; then
	set -- "$root"/test/e2e/*.bats
fi
start=$(date +%s)
{
	bats --timing "$@"
	echo "$?" > "$bats_status"
} | tee "$output"
status=$(cat "$bats_status")
elapsed=$(($(date +%s) - start))

passed=$(grep -c '^ok ' "$output")
failed=$(grep -c '^not ok ' "$output")
skipped=$(grep -c '^ok .* # skip' "$output")
echo
echo "e2e: $((passed + failed)) tests, $failed failures, $skipped skipped, in ${elapsed}s"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
	exit 1
fi
# A skipped test is not a passed one: every suite can run here (root, sshd, Nix).
if [ "$skipped" -ne 0 ]; then
	echo "e2e: $skipped test(s) skipped, which fails the run" >&2
	exit 1
fi
exit 0
