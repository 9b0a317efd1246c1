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
# systemd-boot's entries (nixpkgs' systemd-boot-builder.py writes
# nixos-generation-<N>.conf, with boot counting nixos-generation-<N>+<left>-<done>.conf).
BOOT_ENTRIES=/boot/loader/entries
# The bento-reboot timer's unit, where the client module installs it
# (services.bento.reboot.enable): the machine reboots by itself.
REBOOT_TIMER=/etc/systemd/system/bento-reboot.timer
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

# Whether this machine's reboot window (REBOOT_WINDOW: BENTO_REBOOT_DAYS,
# _FROM, _TO from its update.sh) is open now, in its local time; always
# without one (an update.sh older than the window sets none). It opens on
# each listed day (date +%u: 1 Monday … 7 Sunday) at FROM minutes after
# midnight and closes at TO, on the next day when TO is not after FROM
# (src/config/reboot-window.ts, rebootWindowOpen, is the same rule).
reboot_window_open() {
	[ -n "${BENTO_REBOOT_WINDOW:-}" ] || return 0
	# shellcheck disable=SC2046 # three words: weekday, hour, minute
	set -- $(date '+%u %H %M')
	# Hours and minutes without their leading zero: 08 is octal to the shell.
	now=$((${2#0} * 60 + ${3#0}))
	opens_on() {
		case $BENTO_REBOOT_DAYS in *"$1"*) return 0 ;; esac
		return 1
	}
	if [ "$BENTO_REBOOT_FROM" -lt "$BENTO_REBOOT_TO" ]; then
		opens_on "$1" && [ "$now" -ge "$BENTO_REBOOT_FROM" ] && [ "$now" -lt "$BENTO_REBOOT_TO" ]
		return
	fi
	{ opens_on "$1" && [ "$now" -ge "$BENTO_REBOOT_FROM" ]; } ||
		{ opens_on "$(($1 == 1 ? 7 : $1 - 1))" && [ "$now" -lt "$BENTO_REBOOT_TO" ]; }
}

# Whether this machine reboots into a new kernel by itself: the REBOOT flag,
# or the bento-reboot timer.
reboot_enabled() {
	[ -f "$BENTO_DIR/REBOOT" ] || [ -e "$REBOOT_TIMER" ]
}

# The token of the reboot slot this run's poll fetched (docs/protocol.md
# §12: the line `token: <32 hex digits>` of reboot-slot); nothing without one.
slot_token() {
	sed -n 's/^token: \([0-9a-f]\{32\}\)$/\1/p' "$STATE_DIR/reboot-slot" 2> /dev/null | head -n 1
}

# Whether this run holds a slot it has not used yet (reboot-used: the token
# last used, and the system booted then).
slot_unused() {
	token=$(slot_token)
	[ -n "$token" ] || return 1
	used=$(cut -d ' ' -f 1 "$STATE_DIR/reboot-used" 2> /dev/null)
	[ "$token" != "$used" ]
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
