#!/bin/sh
# Removes everything one e2e suite created, as it recorded it in BASE/.e2e/:
# the simulated machines' processes, its sshd, the users and (when it created
# them) the group sftp_users and the user bento-eval, the mount points it had
# to create, and BASE.
# Safe to run twice, after a partial setup, or from a trap.
#
#   cleanup.sh /srv/bento-e2e-<id>   (id: be2e… for the suites, demo… for scripts/demo.sh, load… for bench/poll-load.sh)
set -u
base=${1:?usage: cleanup.sh /srv/bento-e2e-ID}
case $base in
/srv/bento-e2e-be2e* | /srv/bento-e2e-demo* | /srv/bento-e2e-load*) ;;
*) echo "cleanup.sh: not an e2e directory: $base" >&2; exit 2 ;;
esac
case ${base#/srv/bento-e2e-} in
*[!a-z0-9]* | '') echo "cleanup.sh: not an e2e directory: $base" >&2; exit 2 ;;
esac
[ -d "$base" ] || exit 0
id=${base#/srv/bento-e2e-}
state=$base/.e2e

# The processes of the simulated machines (ssh connection masters included)
# and of the test helpers (processes.sh says how they are found).
sh "$(dirname "$0")/processes.sh" "$id" | while read -r pid _; do
	kill -9 "$pid" 2> /dev/null
done

# The suite's sshd (server/, and any other server a suite started next to it,
# e.g. server2/ of 25-failover.bats: sshd overwrites its environment with its
# process title, so it carries no mark), each checked by its command line
# before it is stopped.
for pidfile in "$base"/*/sshd.pid; do
	[ -f "$pidfile" ] || continue
	pid=$(cat "$pidfile")
	if { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2> /dev/null | grep -qF "${pidfile%/sshd.pid}/sshd_config"; then
		kill "$pid" 2> /dev/null
		i=0
		while kill -0 "$pid" 2> /dev/null && [ "$i" -lt 20 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2> /dev/null
	fi
done

# The users (only accounts whose home is in this suite's chroot), after
# their last sessions.
if [ -f "$state/users" ]; then
	while read -r user; do
		home=$(getent passwd "$user" | cut -d: -f6)
		case $home in
		"$base"/*) ;;
		*) continue ;;
		esac
		for pid in $(pgrep -u "$user"); do
			kill -9 "$pid" 2> /dev/null
		done
		userdel "$user" 2> /dev/null || userdel -f "$user"
	done < "$state/users"
fi
# The user who evaluates fleet code, when the suite's setup-debian.sh made
# it, after the last evaluation (the suite's bento runs have ended), and its
# group (userdel removes it with USERGROUPS_ENAB).
if [ -f "$state/evaluator-created" ] && getent passwd bento-eval > /dev/null; then
	for pid in $(pgrep -u bento-eval); do
		kill -9 "$pid" 2> /dev/null
	done
	userdel bento-eval 2> /dev/null || userdel -f bento-eval
	! getent group bento-eval > /dev/null || groupdel bento-eval
fi
if [ -f "$state/group-created" ] && getent group sftp_users > /dev/null; then
	gid=$(getent group sftp_users | cut -d: -f3)
	if ! getent passwd | cut -d: -f4 | grep -qx "$gid" && [ -z "$(getent group sftp_users | cut -d: -f4)" ]; then
		groupdel sftp_users
	fi
fi

# File systems the suite mounted under BASE (a tmpfs CHROOT_DIR, a machine's
# /var/bento), deepest first; lazily, should a process still hold one.
grep -o " $base/[^ ]*" /proc/self/mounts | sort -r | while read -r mounted; do
	umount -l "$mounted" 2> /dev/null
done

# Mount points and /run/sshd this suite had to create (kept when not empty).
mountpoints=$(cat "$state/mountpoints" 2> /dev/null)
run_sshd=0
[ -f "$state/run-sshd-created" ] && run_sshd=1

# Nix's records of the GC roots deploy made in the suite's chroot (prebuilt
# systems): they would dangle once the chroot is gone.
for record in /nix/var/nix/gcroots/auto/*; do
	case $(readlink "$record" 2> /dev/null) in
	"$base"/*) rm -f -- "$record" ;;
	esac
done

# Deploy's names cache and record of published files, and generate's record,
# of each CHROOT_DIR the suite made under BASE (src/chroot/flake-names-cache.ts,
# published-stats.ts, src/commands/shared/generate-record-store.ts:
# named by a digest of the directory's path), kept outside it in
# /var/cache/bento, and its lock file in /run (chroot-dir.ts, deployLockPath).
for dir in "$base" "$base"/* "$base"/*/*; do
	[ -d "$dir" ] || continue
	digest=$(printf '%s' "$dir" | sha256sum | cut -c1-16)
	rm -f -- "/var/cache/bento/flake-names-$digest.json" "/var/cache/bento/published-stats-$digest.json" "/var/cache/bento/generated-$digest.json" "/run/bento-deploy-$digest.lock"
done

rm -rf -- "$base"
for dir in $mountpoints; do
	rmdir -- "$dir" 2> /dev/null
done
# /run/sshd is left to any other sshd still running.
if [ "$run_sshd" = 1 ] && ! pgrep -x sshd > /dev/null; then
	rmdir /run/sshd 2> /dev/null
fi
exit 0
