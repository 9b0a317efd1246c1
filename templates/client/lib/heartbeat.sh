# shellcheck shell=sh
# The bento client: the heartbeat (docs/protocol.md §5a), the small file
# logs/heartbeat that the sessions writing to the server write last: the
# poll's (a poll with nothing new leaves no log, and a quiet machine must
# not look like a dead one) and the report's after an attempt (so that it
# never names a system the machine just left). Its mtime on the server
# says when the machine was last seen; its text what the machine runs, and
# what only the machine can tell: whether a reboot would change its kernel.

# The heartbeat's lines but its last, the empty one: a log header's first
# lines (log_header_start, logs.sh) with the system the machine runs, the
# one it booted and whether they boot the same kernel, initrd and modules. A key the machine cannot tell is
# left out: configuration before the first attempt (no state), running
# without /run/current-system, booted without /run/booted-system,
# reboot-pending without either. With a reboot window (REBOOT_WINDOW), it is
# named, and a pending reboot that waits for it says so (reboot-waiting);
# with REBOOT_MAX, one that waits for a slot too, and the slot it rebooted
# with (docs/protocol.md §12).
heartbeat_lines() {
	log_header_start heartbeat
	# The last_change_date the machine last applied (its digest first): one line.
	applied=$(head -n 1 "$STATE_DIR/state" 2> /dev/null)
	[ -z "$applied" ] || echo "configuration: $applied"
	[ ! -e "$CURRENT_SYSTEM" ] || echo "running: $(basename "$(readlink -f "$CURRENT_SYSTEM")")"
	[ -z "${BENTO_REBOOT_WINDOW:-}" ] || echo "reboot-window: $BENTO_REBOOT_WINDOW"
	[ -e "$BOOTED_SYSTEM" ] || return 0
	echo "booted: $(basename "$(readlink -f "$BOOTED_SYSTEM")")"
	[ -e "$CURRENT_SYSTEM" ] || return 0
	if boot_part_differing "$BOOTED_SYSTEM" "$CURRENT_SYSTEM" > /dev/null; then
		echo "reboot-pending: yes"
		if ! reboot_window_open; then
			echo "reboot-waiting: window"
		elif [ "${BENTO_REBOOT_SLOTS:-0}" = 1 ] && reboot_enabled && ! slot_unused; then
			echo "reboot-waiting: slot"
		fi
	else
		echo "reboot-pending: no"
	fi
	# The slot it last rebooted with, once it booted another system since.
	[ -f "$STATE_DIR/reboot-used" ] && read -r token booted_then < "$STATE_DIR/reboot-used" || return 0
	[ "$(readlink -f "$BOOTED_SYSTEM")" = "$booted_then" ] || echo "rebooted-with: $token"
}

# Writes the heartbeat into $STATE_DIR/heartbeat, whole: in one write under
# a temporary name, then renamed. Not flushed: it is sent, and written anew,
# on every run. Fails, leaving no temporary behind, when it cannot be
# written (this machine's disk full).
write_heartbeat() {
	beat=$(heartbeat_lines)
	if printf '%s\n\n' "$beat" > "$STATE_DIR/heartbeat.tmp" 2> /dev/null &&
		mv -f "$STATE_DIR/heartbeat.tmp" "$STATE_DIR/heartbeat" 2> /dev/null; then
		return 0
	fi
	rm -f "$STATE_DIR/heartbeat.tmp"
	return 1
}

# Prints the batch commands that write the heartbeat into logs/ on the
# server, as every file bento writes there: a put under a temporary name
# (the shape of §5's, which readers skip and the server's prune removes),
# then a rename (posix-rename@openssh.com: it replaces the previous
# heartbeat). Both with sftp's `-` prefix: their failure (the server's disk
# full, logs/ not writable) never fails the session nor what came before in
# its batch. Nothing when the heartbeat cannot be written on this machine.
batch_heartbeat() {
	write_heartbeat || return 0
	printf '%s\n' "-put $STATE_DIR/heartbeat logs/.heartbeat.tmp-$$" "-rename logs/.heartbeat.tmp-$$ logs/heartbeat"
}
