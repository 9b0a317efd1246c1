# shellcheck shell=sh
# The bento client's run: the tools it needs, the lock, and the cycle
# (poll, download, install, build or prebuilt, switch, report).

# The tools a cycle needs. The bento-upgrade service has them all on its
# PATH; a bootstrap.sh run by hand on a fresh machine may lack git.
check_tools() {
	missing=''
	for tool in sftp ssh flock sha256sum gzip nixos-rebuild; do
		command -v "$tool" > /dev/null 2>&1 || missing="$missing $tool"
	done
	if [ "$BENTO_FLAKE" = 1 ] && ! command -v git > /dev/null 2>&1; then missing="$missing git"; fi
	if [ -n "$missing" ]; then
		warn "missing:$missing; nothing was changed. On a fresh NixOS machine run me as: nix-shell -p git --run 'sh $0' (the bento module then provides them)"
		exit 1
	fi
}

main() {
	if [ "${1:-}" = reboot ]; then
		reboot_main
		exit $?
	fi
	check_tools
	# /var/bento is root's alone (0700, as the module's tmpfiles rule makes
	# it): bootstrap.sh may run on a new machine before that rule exists.
	[ -d "$BENTO_DIR" ] || mkdir -m 0700 "$BENTO_DIR" || exit 1
	mkdir -p "$STATE_DIR/pending" || exit 1
	# Where install_config keeps libraries, made ahead so that keeping one
	# later needs no room on a full disk; should it fail now (a full disk
	# already), install_config tries again and says why.
	mkdir -p "$STATE_DIR/client" 2> /dev/null
	chmod 0700 "$STATE_DIR"
	exec 9> "$STATE_DIR/lock"
	if ! flock -n 9; then
		say "another bento update is running; leaving it to finish"
		exit 0
	fi
	trap close_connection EXIT
	trap 'exit 1' INT TERM HUP

	# A rollback by boot counting, reported in this poll's session.
	report_boot_fallback
	poll_server || exit 1
	if [ "$BENTO_MODE" = update ] && [ -f "$STATE_DIR/state" ] &&
		cmp -s "$STATE_DIR/remote-state" "$STATE_DIR/state"; then
		close_connection
		reboot_on_poll
		if [ -f "$BENTO_DIR/SELF_UPDATE" ] && [ -f "$BENTO_DIR/flake.nix" ] && [ -f "$BENTO_DIR/flake.lock" ]; then
			self_update
			exit $?
		fi
		say "no update required"
		exit 0
	fi

	say "a new configuration is available: downloading it"
	if ! download_config; then
		if lacks_space "$STATE_DIR/sftp.out"; then
			no_space "downloading the configuration" "$STATE_DIR/sftp.out"
			report
		fi
		exit 1
	fi
	if prebuilt_configuration; then
		prebuilt_update
		exit $?
	fi
	close_connection
	install_or_report || exit 1
	start_log
	build_and_switch success
	finish_attempt $?
	exit $?
}

# The end of an attempt on the configuration just downloaded, which ended
# with $1 (0: switched, or already running it; 1: failed; 3: failed for
# lack of space): the configuration was tried, so it is remembered and a
# failing one is not rebuilt on every run, only when a new one is
# published (not one that failed for lack of space: it may fit next
# time); the logs are sent (after a switch, the check that the server is
# still there); then, after a switch, the reboot REBOOT asks for.
finish_attempt() {
	if [ "$1" -ne 3 ]; then
		record_file "$STATE_DIR/remote-state" "$STATE_DIR/state"
		rm -f "$STATE_DIR/no-space"
	fi
	report || return 1
	[ "$1" -eq 0 ] || return 1
	reboot_if_needed
	return 0
}

# `update.sh reboot`, what the bento-reboot timer runs
# (services.bento.reboot): the reboot of reboot_when_due, the same as after
# a switch with the REBOOT flag, under the lock, so that it never reboots
# in the middle of an update. With REBOOT_MAX it polls first, for its slot.
reboot_main() {
	mkdir -p "$STATE_DIR" || return 1
	chmod 0700 "$STATE_DIR"
	exec 9> "$STATE_DIR/lock"
	if ! flock -n 9; then
		say "a bento update is running; the reboot check waits for the next timer"
		return 0
	fi
	if [ "${BENTO_REBOOT_SLOTS:-0}" = 1 ]; then
		# The slot, fresh from the server: a poll (logs and heartbeat too).
		mkdir -p "$STATE_DIR/pending" || return 1
		trap close_connection EXIT
		trap 'exit 1' INT TERM HUP
		poll_server || return 1
		close_connection
	fi
	reboot_when_due
}
