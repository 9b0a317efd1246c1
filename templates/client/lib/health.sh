# shellcheck shell=sh
# The bento client: the health gate after a switch (services.bento.healthCheck).

# The health gate (services.bento.healthCheck): after a switch, no unit that
# was fine before it may have failed, and the new system's own check
# (<toplevel>/etc/bento/health-check, with etc/bento/health.conf) must pass;
# both are tried again during the grace period. Sets HEALTH_PROBLEM.
health_gate() {
	conf="$1/etc/bento/health.conf"
	check="$1/etc/bento/health-check"
	# Each value after a '=' (none: the default; an empty one stays empty).
	check_timeout=$(sed -n 's/^timeout=/=/p' "$conf" 2> /dev/null)
	grace=$(sed -n 's/^grace=/=/p' "$conf" 2> /dev/null)
	check_timeout=${check_timeout:-=30} grace=${grace:-=120}
	check_timeout=${check_timeout#=} grace=${grace#=}
	# Numbers the server's build wrote: checked before the shell computes with them.
	for number in "timeout=$check_timeout" "grace=$grace"; do
		plain_number "${number#*=}" 9 && [ "$number" != timeout=0 ] && continue
		HEALTH_PROBLEM="etc/bento/health.conf: $(shown "$number") is not a number of seconds (at most 9 digits, no leading zero; a timeout of 1 or more)"
		return 1
	done
	deadline=$(($(date +%s) + ${grace:-120}))
	if ! have_systemd; then
		printf '\nbento: no systemd here: the failed-units check is skipped\n' >> "$LOG"
	fi
	while :; do
		HEALTH_PROBLEM=$(health_problem "$check" "${check_timeout:-30}")
		[ -z "$HEALTH_PROBLEM" ] && return 0
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		say "not healthy yet ($HEALTH_PROBLEM); checking again in $HEALTH_PAUSE s"
		sleep "$HEALTH_PAUSE"
	done
}

# Why the system is not healthy now, or nothing. $1: the check, $2: its timeout.
health_problem() {
	if have_systemd; then
		record_failed_units "$STATE_DIR/failed-units.after"
		new_failures=$(comm -13 "$STATE_DIR/failed-units.before" "$STATE_DIR/failed-units.after" | tr '\n' ' ')
		if [ -n "$new_failures" ]; then
			printf 'units failed since the switch: %s' "${new_failures% }"
			return 0
		fi
	fi
	[ -f "$1" ] || return 0
	printf '\nbento: health check (%s s at most):\n' "$2" >> "$LOG"
	# /bin/sh by its path: a NixOS service's PATH is its `path` and
	# coreutils, findutils, grep, sed and systemd (nixos/lib/systemd-lib.nix),
	# no shell; NixOS always makes /bin/sh (environment.binsh).
	if ! timeout "$2" /bin/sh "$1" >> "$LOG" 2>&1; then
		printf 'the health check failed (services.bento.healthCheck.command; its output is in this log)'
	fi
}
