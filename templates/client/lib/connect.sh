# shellcheck shell=sh
# The bento client: SFTP sessions on the first server that answers
# (docs/protocol.md §6, "Connecting").
# A session that cannot connect (refused, reset, timed out: sshd dropping it
# past MaxStartups, a server restarting, a network coming up) is tried on
# the next server of REMOTE_IP, and when none answered, again after a random
# pause, within CONNECT_RETRY seconds for the whole run: the time each
# session spends before its last round of attempts (attempts that failed,
# and pauses) is taken from that one budget, so the poll, the download and
# the prebuilt downloads together never wait longer.
# A login or host key that is refused is not retried: the next server is
# tried, but another round would be refused the same way. Once a server
# answered, every later session of the run uses it, so a run never mixes the
# files of two servers.

# Milliseconds of the run's CONNECT_RETRY budget not yet spent.
BENTO_RETRY_LEFT_MS=$((BENTO_CONNECT_RETRY * 1000))

# One SFTP session in batch mode: a failed command fails the session (plain
# piped sftp would exit 0). All sessions of a phase share one SSH connection
# (ControlMaster), so a poll is a single login on the server. The lock on fd 9
# is not handed to the background connection. LogLevel=ERROR rather than -q:
# -q would also hide why a connection failed (refused, timed out, key refused).
# Arguments are more ssh options; they come first, and ssh keeps the first
# value it is given for an option.
# shellcheck disable=SC2120 # the other sources pass ssh options (upload_logs)
sftp_batch() {
	sftp -b - "$@" \
		-o LogLevel=ERROR \
		-o BatchMode=yes \
		-o ConnectTimeout="$BENTO_TIMEOUT" \
		-o ServerAliveInterval=10 -o ServerAliveCountMax=3 \
		-o StrictHostKeyChecking=accept-new \
		-o ControlMaster=auto -o ControlPath="$STATE_DIR/ssh-%C" -o ControlPersist=300 \
		-P "${BENTO_REMOTE_PORT:?}" "$BENTO_NAME@$BENTO_SFTP_HOST" 9>&-
}

close_connection() {
	ssh -o ControlPath="$STATE_DIR/ssh-%C" -O exit -p "$BENTO_REMOTE_PORT" \
		-l "$BENTO_NAME" "$BENTO_REMOTE_HOST" >/dev/null 2>&1 9>&- || true
}

show_sftp_output() {
	sed -e '/^sftp> /d' -e 's/^/  /' "$STATE_DIR/sftp.out" >&2
}

# Milliseconds since the epoch (whole seconds where date has no %N).
now_ms() {
	ms=$(date +%s%3N)
	case $ms in
	'' | *[!0-9]*) ms=$(($(date +%s) * 1000)) ;;
	esac
	printf '%s\n' "$ms"
}

# Makes $1 the server of the following sessions.
use_server() {
	BENTO_REMOTE_HOST=$1
	case $1 in
	*:*) BENTO_SFTP_HOST="[$1]" ;; # sftp wants an IPv6 address in brackets
	*) BENTO_SFTP_HOST=$1 ;;
	esac
}

# The servers a session may try, one per line, in order: the one this run
# already uses, or every server of REMOTE_IP.
session_servers() {
	if [ "${BENTO_SERVER_CHOSEN:-0}" = 1 ]; then
		printf '%s\n' "$BENTO_REMOTE_HOST"
	else
		printf '%s\n' "$BENTO_SERVERS"
	fi
}

# What an SFTP session that ended with status $1 says about the server, from
# sftp's status and ssh's words in sftp.out: "answered" (there was a
# session: a command may have failed, but the server is there),
# "unreachable" (no connection, worth another try) or "refused" (this
# machine cannot log in there: its key, the host key, the name; another try
# would be refused too). sftp exits 255 when ssh fails, 1 when a command of
# the batch fails.
session_outcome() {
	if [ "$1" -ne 255 ]; then
		echo answered
	elif grep -q -e 'Permission denied' -e 'Host key verification failed' -e 'REMOTE HOST IDENTIFICATION HAS CHANGED' \
		-e 'Too many authentication failures' -e 'Unable to negotiate' -e 'Name or service not known' \
		-e 'No address associated with hostname' "$STATE_DIR/sftp.out"; then
		echo refused
	elif grep -q -e 'connect to host' -e 'kex_exchange_identification' -e 'banner exchange' \
		-e 'Connection closed by' -e 'Connection reset by' -e 'Connection timed out' -e 'Broken pipe' \
		-e 'Temporary failure in name resolution' -e 'No route to host' -e 'Network is unreachable' "$STATE_DIR/sftp.out"; then
		echo unreachable
	else
		echo answered
	fi
}

# A random whole number from 0 to $1 - 1 ($1 at most 65536), from the
# kernel: a fleet whose runs start in the same second must not draw the same.
random_below() {
	random=$(od -An -N2 -tu2 /dev/urandom 2> /dev/null | tr -d ' ')
	echo $((${random:-$$} % $1))
}

# The pause before round $1 + 1 of attempts, in ms: random, from 1 s up to
# 2^$1 s (at most 16 s), so that machines dropped together come back apart.
backoff_ms() {
	ceiling=16
	[ "$1" -lt 4 ] && ceiling=$((1 << $1))
	echo $((1000 + $(random_below $(((ceiling - 1) * 1000 + 1)))))
}

# $1 milliseconds in seconds, as sleep and the messages take them (1.250).
ms_as_seconds() {
	printf '%s.%03d\n' "$(($1 / 1000))" "$(($1 % 1000))"
}

# Waits before round $1 + 1 of attempts (backoff_ms). Fails, without
# waiting, when the pause would end past the deadline (in ms: what is left
# of the run's budget).
connect_pause() {
	pause_ms=$(backoff_ms "$1")
	[ $(($(now_ms) + pause_ms)) -lt "$connect_deadline" ] || return 1
	pause=$(ms_as_seconds "$pause_ms")
	say "no bento server answered; trying again in $pause s"
	sleep "$pause"
}

# sftp_batch with the batch file $1 on the first server that answers (see
# above); its output in sftp.out (with several servers, what each said),
# its status sftp's. Starts no round of attempts once the run's
# CONNECT_RETRY budget is spent: a run gives up after CONNECT_RETRY seconds
# of retrying at the latest, plus the time of the attempts then under way
# (each at most TIMEOUT to connect).
sftp_session() {
	session_start=$(now_ms)
	connect_deadline=$((session_start + BENTO_RETRY_LEFT_MS))
	connect_round=0
	session_servers > "$STATE_DIR/servers"
	servers=$(grep -c '' "$STATE_DIR/servers")
	while :; do
		round_start=$(now_ms)
		retry=0
		tried=0
		: > "$STATE_DIR/sessions.out"
		while IFS= read -r server; do
			[ "$tried" -gt 0 ] && say "could not open a session on $previous; trying $server"
			tried=$((tried + 1))
			previous=$server
			use_server "$server"
			# shellcheck disable=SC2119 # no ssh options: the session's defaults
			sftp_batch < "$1" > "$STATE_DIR/sftp.out" 2>&1
			session_status=$?
			outcome=$(session_outcome "$session_status")
			if [ "$outcome" = answered ]; then
				BENTO_SERVER_CHOSEN=1
				spend_retry_budget
				return "$session_status"
			fi
			[ "$outcome" = unreachable ] && retry=1
			# What each server said, for the message of a run that gives up.
			while IFS= read -r line; do
				printf '%s: %s\n' "$server" "$line"
			done < "$STATE_DIR/sftp.out" >> "$STATE_DIR/sessions.out"
		done < "$STATE_DIR/servers"
		# Several servers: sftp.out tells what each of them said.
		[ "$servers" -gt 1 ] && mv "$STATE_DIR/sessions.out" "$STATE_DIR/sftp.out"
		connect_round=$((connect_round + 1))
		if [ "$retry" = 0 ] || ! connect_pause "$connect_round"; then
			# Messages name the first server, unless the run had chosen one.
			[ "${BENTO_SERVER_CHOSEN:-0}" = 1 ] || use_server "$(printf '%s\n' "$BENTO_SERVERS" | head -n 1)"
			spend_retry_budget
			return "$session_status"
		fi
	done
}

# Takes from the run's budget what this session spent before its last round
# of attempts (rounds that failed, and the pauses after them).
spend_retry_budget() {
	BENTO_RETRY_LEFT_MS=$((BENTO_RETRY_LEFT_MS - (round_start - session_start)))
	[ "$BENTO_RETRY_LEFT_MS" -ge 0 ] || BENTO_RETRY_LEFT_MS=0
}
