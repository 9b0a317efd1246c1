#!/bin/sh
# Runs a command while holding the machine-wide test lock.
#
#   sh scripts/test-lock.sh COMMAND [ARG...]
#
# The test layers share parts of the machine: the group sftp_users, /run/sshd,
# the mount points /var/bento and /root/.ssh. Two runs at once, from one
# checkout or from two (git worktrees), would remove each other's group or
# mount points, so every run takes one lock in /run/lock and a second run
# waits. A run started under the lock (BENTO_TEST_LOCK_HELD=1, set here) does
# not take it again.
set -eu
if [ "${BENTO_TEST_LOCK_HELD:-0}" = 1 ]; then
	exec "$@"
fi
lock_dir=/run/lock
[ -d "$lock_dir" ] && [ -w "$lock_dir" ] || lock_dir=${TMPDIR:-/tmp}
exec 7> "$lock_dir/bento-tests.lock"
if ! flock -n 7; then
	echo "test-lock: another bento test run holds $lock_dir/bento-tests.lock; waiting for it" >&2
	flock 7
fi
BENTO_TEST_LOCK_HELD=1
export BENTO_TEST_LOCK_HELD
exec "$@"
