#!/usr/bin/env bash
# The bento demo, on a fresh Debian 12 machine as root: installs what is
# missing, then runs a whole fleet on this machine, with no NixOS and no
# network. Four simulated machines (a flake laptop, a non-flake router, a
# nas with SELF_UPDATE, and one whose configuration is broken on purpose)
# each run their generated scripts unmodified in a mount namespace of their
# own, against the generated SFTP server (a real sshd on 127.0.0.1), building
# with real Nix. Everything it started (sshd, users, machines) is removed on
# exit or Ctrl-C.
#
#   sh scripts/demo.sh [--keep]
#
# --keep: also keep the files (fleet, generated scripts, chroot, logs), copied
# to a directory under /tmp that the demo names at the end.
# Bash is needed (the e2e helpers are bash); `sh scripts/demo.sh` works too.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
# No pipefail: the e2e helpers read /dev/urandom through head, which ends tr with SIGPIPE.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)

keep=0
case ${1:-} in
--keep) keep=1 ;;
"") ;;
*)
	echo "usage: sh scripts/demo.sh [--keep]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run me as root: the demo creates system users, runs sshd and mount namespaces (and removes them again)" >&2
	exit 1
fi

sh scripts/setup.sh

# The demo reuses the machinery of the end-to-end tests (test/e2e/lib).
export BATS_TEST_DIRNAME=$repo/test/e2e
bats_require_minimum_version() { :; }
export E2E_ID_PREFIX=demo
# shellcheck source=test/e2e/lib/e2e.bash
. "$repo/test/e2e/lib/e2e.bash"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$(printf '\033[1m')
	plain=$(printf '\033[0m')
else
	bold=''
	plain=''
fi

step() {
	printf '\n%s== %s%s\n' "$bold" "$*" "$plain"
}

kept=''
finish() {
	local status=$?
	trap - EXIT INT TERM HUP
	if [ -n "${E2E_BASE:-}" ]; then
		if [ "$keep" = 1 ] && [ -d "$E2E_BASE" ]; then
			kept=$(mktemp -d /tmp/bento-demo.XXXXXX)
			cp -a "$E2E_FLEET" "$kept/fleet"
			cp -a "$E2E_CHROOT" "$kept/chroot"
			cp -a "$E2E_MACHINES" "$kept/machines"
		fi
		e2e_teardown_suite
	fi
	echo
	echo "demo: stopped the SFTP server, removed the demo's users and machines."
	if [ -n "$kept" ]; then
		echo "demo: the files are kept in $kept: fleet/ (with generated/), chroot/ (published configurations and logs), machines/ (each machine's /var/bento)."
	fi
	exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# bento as the demo's fleet sees it; `status` exits 2 when a machine fails,
# which is part of the show here.
show_status() {
	bento status --once || true
}

# run_machine ROLE update|bootstrap: one machine's update cycle, its output indented.
run_machine() {
	local name
	name=$(sys "$1")
	printf '%s-- %s runs %s.sh%s\n' "$bold" "$name" "$2" "$plain"
	e2e_machine "$name" "$2" 2>&1 | sed 's/^/   | /' || true
}

step "A fleet of four machines, its SFTP server on 127.0.0.1, and the machines themselves"
e2e_setup_suite laptop router:nonflake nas:selfupdate broken
laptop=$(sys laptop)
router=$(sys router)
nas=$(sys nas)
broken=$(sys broken)
# The broken machine's configuration fails to build, on purpose.
printf '%s\n' 'echo "error: this configuration is broken on purpose" >&2' 'exit 1' > "$E2E_FLEET/hosts/$broken/build-extra.sh"
echo "fleet:   $E2E_FLEET (config.sh, hosts/, keys/)"
echo "machines: $laptop (flake), $router (no flakes), $nas (flake with SELF_UPDATE), $broken (broken on purpose)"
echo "sshd:    127.0.0.1:$E2E_PORT, chroots in $E2E_CHROOT"
sed 's/^/   | /' "$E2E_STATE/generate.out"

step "bento deploy: every machine's files published into its chroot"
bento deploy

step "bento status: nobody has reported yet"
show_status

step "First boot: each machine runs its bootstrap.sh once"
for role in laptop router nas broken; do run_machine "$role" bootstrap; done

step "bento status"
show_status

step "Changes: the laptop gets a new configuration, the nas's flake input moves on"
e2e_new_revision "$laptop"
printf '2\n' > "$E2E_INPUTS/$nas/version"
bento deploy

step "bento status: the laptop has a rebuild pending"
show_status

step "The machines' timers fire: each runs update.sh"
for role in laptop router nas broken; do run_machine "$role" update; done

step "bento status: up to date, auto updated (the nas updated its own input), failing (the broken one)"
show_status

step "Look around"
echo "  the fleet and its generated scripts: $E2E_FLEET/generated/systems/<name>/update.sh"
echo "  the SFTP server configuration:       $E2E_FLEET/generated/server/"
echo "  a machine's chroot (config, logs):    $E2E_CHROOT/$laptop/"
echo "  its latest log:                       zcat $E2E_CHROOT/$laptop/logs/$(e2e_newest_log "$laptop")"
if [ "$keep" = 0 ]; then
	echo "  (these are removed now; run sh scripts/demo.sh --keep to keep a copy)"
fi
