# shellcheck shell=sh
# The bento client: a machine whose disk is full (docs/protocol.md §6):
# telling it, freeing what the run wrote, trying again later.

# KiB free on the file system of /var/bento (empty when df cannot say).
free_kib() {
	# shellcheck disable=SC2046 # df's line split into its fields
	set -- $(df -Pk "$BENTO_DIR" 2> /dev/null | sed -n 2p)
	case ${4:-} in
	*[!0-9]* | '') ;;
	*) printf '%s\n' "$4" ;;
	esac
}

space_left() {
	printf '%s KiB free in %s' "$(free_kib)" "$BENTO_DIR"
}

# Whether a step failed for lack of space, as its output ($1) says.
lacks_space() {
	grep -q 'No space left' "$1" 2> /dev/null
}

# Whether the file system of /var/bento is all but full (less than 1 MiB):
# git, for one, does not always say why it could not write.
disk_full() {
	free=$(free_kib)
	[ -n "$free" ] && [ "$free" -lt 1024 ]
}

out_of_space() {
	grep -q 'No space left' "$LOG"
}

# A run that failed for lack of space on this machine (docs/protocol.md §6):
# frees what it downloaded or built (never the installed configuration, nor
# the update.sh the timer runs: a machine that removed them would never poll
# again), says so in a short log (a long one may not fit) once per
# published configuration, and forgets that configuration was tried, so
# that the next run tries it again and succeeds once there is room.
# $1: what failed, $2: its output.
no_space() {
	free_run_files
	warn "no space left on this machine while $1 ($(space_left) once what this run wrote is removed); this configuration is tried again on the next run:"
	tail -n 5 "$2" 2> /dev/null | sed 's/^/  /' >&2
	rm -f "$STATE_DIR/state"
	# Reported already for this configuration: one log, not one per run.
	cmp -s "$STATE_DIR/remote-state" "$STATE_DIR/no-space" && return 0
	{
		log_header
		echo "No space left on this machine while $1: $(space_left) once what this run wrote is removed."
		echo "This configuration is tried again on the next runs, until it fits."
		echo
		tail -n 20 "$2" 2> /dev/null
	} > "$LOG.short" && mv "$LOG.short" "$LOG" &&
		queue_log failure "$(current_system)" &&
		record_file "$STATE_DIR/remote-state" "$STATE_DIR/no-space"
}

# What a run wrote that the next one can do without: the download (and
# what install_config staged from it), the build result and its link
# (unless the result is in use: nix-store refuses). A configuration that was
# installed stays: it was verified, and it holds the update.sh the timer
# runs; the next run downloads the configuration again.
free_run_files() {
	rm -rf "$STATE_DIR/incoming" "$STATE_DIR/previous" "$STATE_DIR/cache" "$LOG.short"
	if [ -L "$STATE_DIR/result" ]; then
		result=$(readlink -f "$STATE_DIR/result")
		rm -f "$STATE_DIR/result"
		[ "$result" = "$(current_system)" ] || nix-store --delete "$result" > /dev/null 2>&1 || true
	fi
}
