#!/bin/sh
# Lists the processes of one e2e suite (or the demo, or a load test), one
# "<pid> <command line>" a line: those that run in a mount namespace of one
# of its simulated machines (machine.sh: a namespace other than this one,
# whose mounts come from the suite's directory /srv/bento-e2e-<id> or its
# tmpfs named bento-e2e-<id>: the client, its ssh connection masters, the
# stand-ins, ...) and the helpers that carry BENTO_E2E_RUN=<id> in their
# environment (nginx, a silent server of 05-server-unreachable.bats).
#
#   processes.sh ID
set -u
id=${1:?usage: processes.sh ID}
own=$(readlink /proc/self/ns/mnt)
for dir in /proc/[0-9]*; do
	pid=${dir#/proc/}
	[ "$pid" = "$$" ] && continue
	mine=0
	namespace=$(readlink "$dir/ns/mnt" 2> /dev/null) || continue
	if [ "$namespace" != "$own" ] && grep -q "bento-e2e-${id}[/ ]" "$dir/mountinfo" 2> /dev/null; then
		mine=1
	elif { tr '\0' '\n' < "$dir/environ"; } 2> /dev/null | grep -qx "BENTO_E2E_RUN=$id"; then
		mine=1
	fi
	[ "$mine" = 1 ] && printf '%s %s\n' "$pid" "$(tr '\0' ' ' < "$dir/cmdline" 2> /dev/null)"
done
exit 0
