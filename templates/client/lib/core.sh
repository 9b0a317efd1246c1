# shellcheck shell=sh
# shellcheck disable=SC2034 # the state below is read by the other sources
# The bento client, core: the run's fixed paths and state, messages, and
# the durable replacement of a file. The machine's settings (BENTO_NAME,
# BENTO_SERVERS, ...) come from its update.sh or bootstrap.sh, which
# defines them before this library is read.

set -u
umask 022
export LC_ALL=C

# The machine's copy of its configuration; bento's own state lives in .bento/
# (kept out of the flake's git tree by .gitignore).
BENTO_DIR=/var/bento
STATE_DIR="$BENTO_DIR/.bento"
PROFILE=/nix/var/nix/profiles/system
# The system NixOS runs now, and the one it booted (absent in a container).
CURRENT_SYSTEM=/run/current-system
BOOTED_SYSTEM=/run/booted-system
LOG="$STATE_DIR/build.log"
SWITCHED=0
# The log this run queued for its switch (success or autoupdate): a rollback
# replaces it, and only it (logs queued by earlier runs stay queued).
SWITCH_LOG=''
# 1 while applying a prebuilt system (docs/protocol.md §11).
PREBUILT=0
# Seconds between two health checks of a new system during its grace period.
HEALTH_PAUSE=5

say() {
	printf 'bento: %s\n' "$*"
}

warn() {
	printf 'bento: %s\n' "$*" >&2
}

# A line for the person watching and for the log.
note() {
	say "$*"
	printf 'bento: %s\n' "$*" >> "$LOG"
}

# Why the prebuilt system is refused, into the log: the failure log the
# server gets says it, and prebuilt_update shows the log's end.
refuse() {
	printf 'bento: %s\n' "$*" >> "$LOG"
}

# The system that runs now: /run/current-system on NixOS, else the system
# profile (resolved).
running_system() {
	if [ -e "$CURRENT_SYSTEM" ]; then
		readlink -f "$CURRENT_SYSTEM"
	else
		readlink -f "$PROFILE"
	fi
}

# The store path of the system that runs now; empty when there is none.
current_system() {
	running=$(running_system)
	case "$running" in
	/nix/store/*) printf '%s\n' "$running" ;;
	esac
}

# The first of the kernel, initrd and kernel modules (readlink -f of each)
# that system $1 and system $2 do not share, printed; fails when they share
# all three. Booting system $2 instead of $1 would change that part: what
# the REBOOT flag (reboot_if_needed) and the heartbeat's reboot-pending
# (docs/protocol.md §5a) ask.
boot_part_differing() {
	for part in kernel initrd kernel-modules; do
		if [ "$(readlink -f "$1/$part")" != "$(readlink -f "$2/$part")" ]; then
			printf '%s\n' "$part"
			return 0
		fi
	done
	return 1
}

# Replaces file $2 with a copy of $1, durably: a temporary file flushed to
# the disk before it is renamed into place, and the directory after
# (coreutils sync: fsync of each file named). A power cut leaves the old
# content or the new one, never an empty file: .bento/state, for one, says
# which configuration was tried. Fails, leaving $2 as it was, when it
# cannot be written.
record_file() {
	if cp "$1" "$2.tmp" && sync -- "$2.tmp" && mv "$2.tmp" "$2" && sync -- "${2%/*}"; then
		return 0
	fi
	rm -f "$2.tmp"
	return 1
}
