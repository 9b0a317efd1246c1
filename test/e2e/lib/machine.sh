#!/bin/sh
# Runs a command as one simulated machine: in a mount namespace of its own
# where the machine's directories are bind-mounted over the paths the bento
# client uses. The client scripts run unmodified.
#
#   machine.sh MACHINE_DIR COMMAND [ARG...]
#
# MACHINE_DIR holds: var-bento/ (/var/bento) — or var/ (/var, for a new
# machine that has no /var/bento yet) —, ssh/ (/root/.ssh: its key and
# known_hosts), profiles/ (/nix/var/nix/profiles), gcroots/
# (/nix/var/nix/gcroots, so the machine's profile generations register their
# GC roots there and not on the host), run/ (/run: current-system,
# booted-system, systemd/system) and boot/ (/boot: the boot loader's
# entries). The caller sets the environment (see e2e.bash). A machine
# with a nix/ directory has a Nix store of its own: nix/ is bound over /nix
# first (Debian's Nix then starts a fresh store and database there, sharing
# nothing with the host's), and the profiles and GC roots over its var/.
set -eu
dir=$1
shift
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private -- sh -ec '
	dir=$1
	shift
	if [ -d "$dir/nix" ]; then
		mount --bind "$dir/nix" /nix
	fi
	if [ -d "$dir/var" ]; then
		mount --bind "$dir/var" /var
	else
		mount --bind "$dir/var-bento" /var/bento
	fi
	mount --bind "$dir/ssh" /root/.ssh
	mount --bind "$dir/profiles" /nix/var/nix/profiles
	mount --bind "$dir/gcroots" /nix/var/nix/gcroots
	mount --bind "$dir/run" /run
	if [ -d "$dir/boot" ]; then
		mount --bind "$dir/boot" /boot
	fi
	cd /var/bento 2> /dev/null || cd /
	exec "$@"
' machine "$dir" "$@"
