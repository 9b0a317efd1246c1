# shellcheck shell=sh
# The bento client: its logs (docs/protocol.md §5): the header, writing one
# for the server (cut to LOG_SIZE_LIMIT), sending the queued ones (and the
# heartbeat after them, heartbeat.sh), and after a switch the check that
# the new system still reaches a server.

# The header every log starts with (docs/protocol.md §5): its first lines
# (log_header_start), the configuration this run applies (last_change_date
# as downloaded: its digest first), an empty line. The server passes a
# rollout's wave only on a success whose header names the configuration
# the wave gave.
log_header() {
	log_header_start "$BENTO_MODE"
	echo "configuration: $(cat "$STATE_DIR/remote-state" 2> /dev/null)"
	echo
}

# The first lines of a log's header and of the heartbeat (heartbeat.sh,
# docs/protocol.md §5a): a line for people, what wrote it ($1: the mode,
# or heartbeat), for which system and when, then the log protocol version
# this client speaks.
log_header_start() {
	echo "bento $1 of $BENTO_NAME on $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "protocol: $BENTO_LOG_PROTOCOL"
}

start_log() {
	log_header > "$LOG"
}

# Writes the gzipped log for the server: YYYYMMDD-HHMM_<store path>_<result>.log.gz
# $1: result (success, failure, rollback, autoupdate), $2: store path it ran.
# A log over LOG_SIZE_LIMIT is cut to its start and end: the server deletes
# bigger files. Fails, leaving nothing behind, when it cannot be written.
queue_log() {
	store_name=$(basename "${2:-/nix/store/00000000000000000000000000000000-unknown}")
	log_name="$(date -u +%Y%m%d-%H%M)_${store_name}_$1.log.gz"
	queued="$STATE_DIR/pending/$log_name"
	# Flushed before its rename, and pending/ after (record_file): a power
	# cut never leaves an empty log queued.
	if gzip -c "$LOG" > "$queued.tmp" &&
		{ [ "$(wc -c < "$queued.tmp")" -le "$BENTO_LOG_SIZE_LIMIT" ] || cut_log | gzip -c > "$queued.tmp"; } &&
		sync -- "$queued.tmp" && mv "$queued.tmp" "$queued" && sync -- "$STATE_DIR/pending"; then
		return 0
	fi
	rm -f "$queued.tmp"
	warn "could not write the log $queued ($(space_left))"
	return 1
}

# The start and the end of the log, a quarter of LOG_SIZE_LIMIT each (gzip
# cannot make that grow past the limit), and how much was left out.
cut_log() {
	keep=$((BENTO_LOG_SIZE_LIMIT / 4))
	head -c "$keep" "$LOG"
	printf '\n\n[bento: %s bytes of this log were left out here to fit LOG_SIZE_LIMIT]\n\n' "$(($(wc -c < "$LOG") - 2 * keep))"
	tail -c "$keep" "$LOG"
}

# Prints the batch commands that send the queued logs: for every one, a
# `put` into logs/ under a temporary name and a rename to its real name: a
# log appears on the server only whole (docs/protocol.md §5). A put that
# fails ends the batch before its rename. Nothing when no log is queued.
batch_pending_logs() {
	for log in "$STATE_DIR"/pending/*.log.gz; do
		[ -f "$log" ] || continue
		name=${log##*/}
		printf 'put %s logs/.%s.tmp-%s\nrename logs/.%s.tmp-%s logs/%s\n' "$log" "$name" "$$" "$name" "$$" "$name"
	done
	return 0
}

# Whether any log is queued for the server.
logs_queued() {
	[ -n "$(batch_pending_logs)" ]
}

# Puts every queued log into logs/ on the server, then the heartbeat
# (docs/protocol.md §5a), written now: after a switch or a rollback it
# names the system that runs. One session; what sftp said (why it failed)
# in UPLOAD_SAID. Arguments are more ssh options (sftp_batch). Returns 0 at
# once when no log is queued: nothing is asked of the server. Its outcome
# is the logs': a heartbeat the server does not take fails nothing. The
# only file it writes on this machine is the small heartbeat, which is left
# out when it cannot be written: the batch goes to sftp through a pipe,
# sftp's words into a variable, as the disk may be full (after a switch,
# that is when the run could not write its log).
upload_logs() {
	UPLOAD_SAID=''
	logs_queued || return 0
	batch=$(
		batch_pending_logs
		batch_heartbeat
	)
	UPLOAD_SAID=$(printf '%s\n' "$batch" | sftp_batch "$@" 2>&1) || return 1
	rm -f "$STATE_DIR"/pending/*.log.gz
	return 0
}

# Whether the server answers at all: a new SSH connection (not the shared
# one, which may be dead without knowing it yet) that logs in and gets an
# answer to a read-only SFTP request, within TIMEOUT to connect. It tells a
# server that refused an upload (its disk full, logs/ not writable: it
# answers) from one this machine cannot reach (no route, refused, timed out,
# key refused): only the latter means the new system may have lost it.
# What sftp said is in PROBE_SAID (no file: as upload_logs).
server_reachable() {
	PROBE_SAID=$(printf 'cd /\n' | sftp_batch -o ControlMaster=no -o ControlPath=none 2>&1)
}

# Sends the queued logs. 0: sent (or none queued); 1: the server answers
# but did not take them (they stay queued); 3: the server cannot be
# reached. SERVERS_SAID says why.
send_logs() {
	upload_logs && return 0
	SERVERS_SAID=$UPLOAD_SAID
	server_reachable && return 1
	return 3
}

# Shows what the servers said (SERVERS_SAID), without sftp's echo of the batch.
show_servers_said() {
	printf '%s\n' "$SERVERS_SAID" | sed -e '/^sftp> /d' -e '/^$/d' -e 's/^/  /' >&2
}

# Whether ssh's words ($1) say that sshd took the connection and closed it
# before the login, as sshd does past its MaxStartups: the server is there
# (and the network to it works), only busy.
dropped_by_sshd() {
	printf '%s\n' "$1" | grep -q -E '(kex|ssh)_exchange_identification: (read: )?Connection (reset|closed)'
}

# The servers to send the logs to after a switch, one per line: the run's
# server first, then the other servers of REMOTE_IP in their order (mirrors
# of the same fleet: the logs they receive are brought back to the first).
report_servers() {
	printf '%s\n' "$BENTO_REMOTE_HOST"
	printf '%s\n' "$BENTO_SERVERS" | grep -vxF -e "$BENTO_REMOTE_HOST"
	return 0
}

# After a switch: one round of sending the queued logs, on every server of
# report_servers in turn, each on a new connection, until one takes them.
# A server that does not take them is asked something read-only
# (server_reachable). With no log queued (the run could not write its own:
# this machine's disk full), that question alone is asked of each server,
# as the check of the new system must be made all the same. 0: sent (none
# queued: a server answers); 1: no server took them but one answers (its
# disk full, logs/ not writable); 2: none answered but one took the
# connection and dropped it (dropped_by_sshd: there, but busy); 3: no
# server can be reached. SERVERS_SAID tells what each server said;
# LOGS_TO_SEND is 0 when no log was queued. No file is written here but
# the heartbeat each upload sends (skipped when it cannot be): on a full
# disk the servers, or their words, would be lost.
send_logs_to_a_server() {
	run_server=$BENTO_REMOTE_HOST
	LOGS_TO_SEND=0
	logs_queued && LOGS_TO_SEND=1
	SERVERS_SAID=''
	best=3
	# Host names and addresses, as bento checked them: no blanks, no patterns.
	for server in $(report_servers); do
		use_server "$server"
		UPLOAD_SAID='' PROBE_SAID=''
		if [ "$LOGS_TO_SEND" = 0 ]; then
			if server_reachable; then
				say "$server answers: the new system reaches it (no log to send: this run's could not be written)"
				return 0
			elif dropped_by_sshd "$PROBE_SAID"; then
				said=2
			else
				said=3
			fi
		else
			upload_logs -o ControlMaster=no -o ControlPath=none && return 0
			if dropped_by_sshd "$UPLOAD_SAID"; then
				said=2
			elif server_reachable; then
				# It answers now: the upload may have failed while it was
				# coming back (sshd restarting). Once more before taking it
				# for a server that does not take the log.
				upload_logs -o ControlMaster=no -o ControlPath=none && return 0
				said=1
				PROBE_SAID=''
			elif dropped_by_sshd "$PROBE_SAID"; then
				said=2
			else
				said=3
			fi
		fi
		[ "$said" -lt "$best" ] && best=$said
		# What each server said (the upload, and the question that failed), for the messages.
		SERVERS_SAID=$(
			printf '%s\n' "$SERVERS_SAID"
			printf '%s\n%s\n' "$UPLOAD_SAID" "$PROBE_SAID" | while IFS= read -r line; do
				case $line in
				'sftp> '* | '') ;;
				*) printf '%s: %s\n' "$server" "$line" ;;
				esac
			done
		)
	done
	use_server "$run_server"
	return "$best"
}

# After a switch the network may take a moment to come back (interfaces or
# the resolver restarted), and a fleet that switched together may find sshd
# at its MaxStartups: while no server answers, ask again, after random pauses
# of 1 s up to 2^n s (as the connect code does, so that machines dropped
# together come back apart), until TIMEOUT seconds have passed (the grace
# window of a switch; CONNECT_RETRY's budget is the poll's and downloads').
# Returns what send_logs_to_a_server returned last.
send_logs_after_switch() {
	deadline=$(($(date +%s) + BENTO_TIMEOUT))
	switch_round=0
	while :; do
		send_logs_to_a_server
		sent=$?
		[ "$sent" -ge 2 ] || return "$sent"
		left=$((deadline - $(date +%s)))
		[ "$left" -gt 0 ] || return "$sent"
		switch_round=$((switch_round + 1))
		pause_ms=$(backoff_ms "$switch_round")
		# The last attempt at the end of the window, not past it.
		[ "$pause_ms" -gt $((left * 1000)) ] && pause_ms=$((left * 1000))
		pause=$(ms_as_seconds "$pause_ms")
		say "no bento server answers after the switch; asking again in $pause s"
		sleep "$pause"
	done
}

# Phase 2: send the log. After a switch this is also the check that the new
# system still reaches the server: only servers it cannot reach at all, none
# of REMOTE_IP, make it go back to the previous system; never one that
# answers but does not take the log (its disk full, logs/ not writable), nor
# one whose sshd takes the connection and drops it (busy: past its
# MaxStartups). Their log waits for the next run. A switch whose log could
# not be written (this machine's disk full) is checked all the same: the
# servers are asked something read-only instead.
report() {
	LOGS_TO_SEND=1
	SERVERS_SAID=''
	if [ "$SWITCHED" = 1 ]; then
		send_logs_after_switch
	else
		send_logs
	fi
	sent=$?
	case $sent in
	0) return 0 ;;
	1)
		warn "the server answers but did not take the log (its disk full, or logs/ not writable?); it is kept for the next run:"
		show_servers_said
		return 0
		;;
	2)
		if [ "$LOGS_TO_SEND" = 1 ]; then
			warn "the bento server takes connections but drops them before the login (busy: at its MaxStartups?); it is there, so nothing is rolled back; the log is kept for the next run:"
		else
			warn "the bento server takes connections but drops them before the login (busy: at its MaxStartups?); it is there, so nothing is rolled back (there was no log to send: this run's could not be written):"
		fi
		show_servers_said
		return 0
		;;
	esac
	if [ "$SWITCHED" != 1 ]; then
		warn "could not upload the log; it is kept for the next run:"
		show_servers_said
		return 0
	fi
	warn "the server is unreachable after the switch: rolling back"
	show_servers_said
	# This run's log of the switch gives way to the rollback's; the logs of
	# earlier runs that the server did not take are history: they stay queued.
	[ -z "$SWITCH_LOG" ] || rm -f "$SWITCH_LOG"
	roll_back
	if ! queue_log rollback "$(current_system)"; then
		# The disk full: this machine's journal is all that tells of it.
		warn "rolled back, but no log of the rollback could be written ($(space_left)): the server will not hear of it from this run"
	fi
	return 1
}
