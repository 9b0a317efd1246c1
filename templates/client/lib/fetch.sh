# shellcheck shell=sh
# The bento client: the poll, the download of a configuration checked
# against its manifest, and its installation into /var/bento.

# Phase 1: read last_change_date, send the logs queued by earlier runs, then
# write the heartbeat (docs/protocol.md §5a: it describes the system running
# now; an update that follows writes it again after its switch), in one
# session. A log the server does not take ends the batch there: the logs
# stay queued, no heartbeat. A heartbeat the server does not take changes
# nothing. Fails (and changes nothing) when the server is unreachable.
poll_server() {
	rm -f "$STATE_DIR/remote-state" "$STATE_DIR/reboot-slot"
	printf 'get last_change_date %s\n' "$STATE_DIR/remote-state" > "$STATE_DIR/batch"
	# With REBOOT_MAX, the reboot slot this machine holds, if any (§12): with
	# sftp's - prefix, none is no error. Fetched anew by every poll.
	[ "${BENTO_REBOOT_SLOTS:-0}" != 1 ] || printf '%s\n' "-get reboot-slot $STATE_DIR/reboot-slot" >> "$STATE_DIR/batch"
	batch_pending_logs >> "$STATE_DIR/batch"
	batch_heartbeat >> "$STATE_DIR/batch"
	sftp_session "$STATE_DIR/batch"
	poll_status=$?
	if ! grep -q '^[0-9a-f]\{64\}' "$STATE_DIR/remote-state" 2> /dev/null; then
		explain_poll_failure
		return 1
	fi
	if [ "$poll_status" -eq 0 ]; then
		rm -f "$STATE_DIR"/pending/*.log.gz
	else
		warn "the server answers but did not take the logs of earlier runs (its disk full, or logs/ not writable?); they are kept for the next run:"
		show_sftp_output
	fi
	return 0
}

# Why the poll got no usable last_change_date: the server cannot be reached,
# has nothing for this machine, published a broken one, or this machine has
# no room to write it.
explain_poll_failure() {
	if grep -q 'No space left' "$STATE_DIR/sftp.out"; then
		warn "no space left on this machine to write $STATE_DIR/remote-state ($(space_left)); nothing was changed:"
		show_sftp_output
	elif grep -q 'last_change_date.* not found' "$STATE_DIR/sftp.out"; then
		# Reached, but nothing deployed for this machine yet.
		warn "the bento server has nothing published for $BENTO_NAME yet (no last_change_date; run bento deploy there); nothing was changed:"
		show_sftp_output
	elif [ -f "$STATE_DIR/remote-state" ] && [ ! -s "$STATE_DIR/remote-state" ]; then
		warn "the bento server's last_change_date for $BENTO_NAME is empty: the original bento published it, or a deploy did not finish; run bento deploy there. Nothing was changed"
	elif [ -s "$STATE_DIR/remote-state" ]; then
		warn "the bento server's last_change_date for $BENTO_NAME does not start with the digest of a manifest (the original bento published it, or it was edited by hand); run bento deploy there. Nothing was changed"
	else
		warn "cannot reach the bento server ($BENTO_NAME@$BENTO_REMOTE_HOST port $BENTO_REMOTE_PORT); nothing was changed:"
		show_sftp_output
	fi
}

# Downloads config/ into .bento/incoming and checks it against the manifest
# the server published with it. A partial or changed download is not used.
download_config() {
	rm -rf "$STATE_DIR/incoming"
	printf 'get -R config %s\n' "$STATE_DIR/incoming" > "$STATE_DIR/batch"
	if ! sftp_session "$STATE_DIR/batch"; then
		warn "downloading the configuration failed; it will be retried on the next run:"
		show_sftp_output
		return 1
	fi
	manifest="$STATE_DIR/incoming/.bento-manifest"
	if [ ! -f "$manifest" ]; then
		warn "the downloaded configuration has no .bento-manifest; it will be retried on the next run"
		return 1
	fi
	expected=$(sed -n '1s/^\([0-9a-f]\{64\}\).*/\1/p' "$STATE_DIR/remote-state")
	actual=$(sha256sum "$manifest" | cut -d ' ' -f 1)
	if [ "$expected" != "$actual" ]; then
		warn "the configuration changed on the server during the download; it will be retried on the next run"
		return 1
	fi
	if ! (cd "$STATE_DIR/incoming" && sha256sum -c --quiet --strict .bento-manifest) > "$STATE_DIR/verify.out" 2>&1; then
		warn "the downloaded configuration does not match its manifest; it will be retried on the next run:"
		sed 's/^/  /' "$STATE_DIR/verify.out" >&2
		return 1
	fi
	only_listed_files || return 1
	return 0
}

# The download holds exactly the files the manifest lists, no more: get -R
# brings whatever config/ holds on the server, and only listed files were
# verified. Every listed file is there and matches (sha256sum -c), so one
# more entry of any kind than the manifest has lines is one too many.
only_listed_files() {
	listed=$(grep -c '' "$STATE_DIR/incoming/.bento-manifest")
	found=$(cd "$STATE_DIR/incoming" && find . ! -type d ! -path ./.bento-manifest -printf x | wc -c)
	[ "$found" -eq "$listed" ] && return 0
	warn "the downloaded configuration holds files its manifest does not list; it is not used, and will be retried on the next run:"
	# The manifest's names (escaped ones stay escaped: a message only).
	sed 's/^\\\{0,1\}[0-9a-f]\{64\}  //' "$STATE_DIR/incoming/.bento-manifest" > "$STATE_DIR/listed"
	(cd "$STATE_DIR/incoming" && find . ! -type d ! -path ./.bento-manifest -print) | while IFS= read -r file; do
		grep -qxF -- "$file" "$STATE_DIR/listed" || printf '  %s\n' "$file" >&2
	done
	return 1
}

# Moves every entry of directory $1 but bento's state (.bento) and update.sh
# into directory $2: renames within the file system of /var/bento, which
# need no room. Errors go to install.out.
move_entries() {
	for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		[ -e "$entry" ] || [ -L "$entry" ] || continue
		[ "$entry" = "$STATE_DIR" ] || [ "$entry" = "$1/update.sh" ] && continue
		mv -- "$entry" "$2"/ 2>> "$STATE_DIR/install.out" || return 1
	done
}

# A setting of the downloaded update.sh ($1: its name, $2: this script's
# value, used when the download has none): the configuration being applied
# brings its own, so a machine just made prebuilt, or given a new signing
# key, applies it at once. update.sh writes each on one line, bare or in
# single quotes.
downloaded_setting() {
	line=$(grep "^$1=" "$STATE_DIR/incoming/update.sh" 2> /dev/null | tail -n 1)
	if [ -z "$line" ]; then
		printf '%s\n' "$2"
		return 0
	fi
	value=${line#*=}
	case $value in
	"'"*"'")
		value=${value#"'"}
		value=${value%"'"}
		;;
	esac
	printf '%s\n' "$value"
}

# The library the downloaded update.sh runs (docs/protocol.md §4), kept in
# .bento/client/ under its digest before that update.sh replaces the
# installed one: from then on the script the timer runs always finds the
# library it was generated with, even when a run is killed between the
# renames of install_config (the new library then sits beside the old
# script, whose own is still kept). A hard link, which needs no room on a
# full disk (main makes .bento/client/), of a file flushed with the rest of
# the download; a published file is replaced, never changed in place. A
# download whose library is not the one its update.sh names is not
# installed. Sets LIBRARY_DIGEST (empty: the downloaded update.sh names
# none, as a bento older than the library wrote it).
keep_library() {
	LIBRARY_DIGEST=$(downloaded_setting BENTO_LIBRARY_SHA256 '')
	[ -n "$LIBRARY_DIGEST" ] || return 0
	case $LIBRARY_DIGEST in
	*[!0-9a-f]*)
		printf 'the downloaded update.sh names no SHA-256 for its library but %s\n' "$(shown "$LIBRARY_DIGEST")" >> "$STATE_DIR/install.out"
		return 1
		;;
	esac
	library="$STATE_DIR/incoming/bento-client.sh"
	digest=$(sha256sum -- "$library" 2>> "$STATE_DIR/install.out") || return 1
	if [ "${digest%% *}" != "$LIBRARY_DIGEST" ]; then
		printf 'the downloaded bento-client.sh (SHA-256 %s) is not the library the downloaded update.sh runs (%s)\n' "${digest%% *}" "$LIBRARY_DIGEST" >> "$STATE_DIR/install.out"
		return 1
	fi
	kept="$STATE_DIR/client/$LIBRARY_DIGEST.sh"
	if [ -f "$kept" ]; then
		# Kept by an earlier run: used when whole (a power cut may have left it empty).
		digest=$(sha256sum -- "$kept" 2>> "$STATE_DIR/install.out")
		[ "${digest%% *}" = "$LIBRARY_DIGEST" ] && return 0
		rm -f -- "$kept"
	fi
	mkdir -p "$STATE_DIR/client" 2>> "$STATE_DIR/install.out" &&
		ln -- "$library" "$kept" 2>> "$STATE_DIR/install.out" &&
		sync -- "$STATE_DIR/client" 2>> "$STATE_DIR/install.out"
}

# Once a downloaded update.sh is installed: the kept libraries of the
# scripts it replaced go (an update.sh that names none keeps none).
forget_other_libraries() {
	for kept in "$STATE_DIR"/client/*.sh; do
		[ -e "$kept" ] || continue
		[ "$kept" = "$STATE_DIR/client/$LIBRARY_DIGEST.sh" ] || rm -f "$kept"
	done
}

# install_config, and when it fails: says why, and a lack of space is
# reported (once per configuration, no_space) and sent at once. Fails then.
install_or_report() {
	install_config && return 0
	warn "installing the configuration into $BENTO_DIR failed:"
	sed 's/^/  /' "$STATE_DIR/install.out" >&2
	if lacks_space "$STATE_DIR/install.out" || disk_full; then
		no_space "installing the configuration" "$STATE_DIR/install.out"
		report
	fi
	return 1
}

# Replaces the configuration in /var/bento with the verified download,
# whole or not at all (docs/protocol.md §6): the download is first made
# ready where it is (for a flake its git tree, which needs room: a flake
# only sees files tracked by git); only then do the installed entries move
# aside into .bento/previous and the download's move in, renames that need
# no room, update.sh last, in one rename over the installed one: the script
# the timer runs is never missing, even if the run is killed here. Until
# then the installed configuration stays as it was; should a rename fail,
# it is put back. The previous entries are then removed. What failed says
# why in install.out.
install_config() {
	: > "$STATE_DIR/install.out"
	rm -rf "$STATE_DIR/previous"
	keep_library || return 1
	new_script=0
	[ -e "$STATE_DIR/incoming/update.sh" ] && new_script=1
	if [ "$BENTO_FLAKE" = 1 ]; then
		{ git -C "$STATE_DIR/incoming" init -q && git -C "$STATE_DIR/incoming" add -A; } >> "$STATE_DIR/install.out" 2>&1 || return 1
	fi
	# The download on the disk before it replaces anything: every file and
	# directory flushed (a power cut after the renames below must not leave
	# an update.sh or a configuration of zeros where a good one was).
	find "$STATE_DIR/incoming" \( -type f -o -type d \) -exec sync -- {} + 2>> "$STATE_DIR/install.out" || return 1
	mkdir "$STATE_DIR/previous" 2>> "$STATE_DIR/install.out" || return 1
	if ! move_entries "$BENTO_DIR" "$STATE_DIR/previous"; then
		move_entries "$STATE_DIR/previous" "$BENTO_DIR"
		return 1
	fi
	if ! move_entries "$STATE_DIR/incoming" "$BENTO_DIR" ||
		{ [ -e "$STATE_DIR/incoming/update.sh" ] && ! mv -- "$STATE_DIR/incoming/update.sh" "$BENTO_DIR/update.sh" 2>> "$STATE_DIR/install.out"; }; then
		move_entries "$BENTO_DIR" "$STATE_DIR/incoming"
		move_entries "$STATE_DIR/previous" "$BENTO_DIR"
		return 1
	fi
	# The renames themselves on the disk before the previous entries go.
	sync -- "$BENTO_DIR" 2>> "$STATE_DIR/install.out"
	[ "$new_script" = 0 ] || forget_other_libraries
	rm -rf "$STATE_DIR/incoming" "$STATE_DIR/previous"
}
