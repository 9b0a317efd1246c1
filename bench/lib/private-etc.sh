#!/bin/sh
# private-etc.sh WORKDIR COMMAND [ARG...]: runs COMMAND, as root, in a mount
# namespace of its own where /etc is a copy (WORKDIR/etc, made on first use)
# and /var/log, /var/mail and journald's socket directory are empty tmpfs:
# accounts made there (useradd, systemd-sysusers, usermod) never reach this
# machine's /etc/passwd, lastlog or journal, and vanish with the namespace
# and WORKDIR. Used by bench/setup-debian-bench.sh and the scale test of
# setup-debian.sh (test/render/setup-debian-scale.test.ts).
set -eu
work=$1
shift
mkdir -p "$work"
[ -d "$work/etc" ] || cp -a /etc "$work/etc"
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private sh -c '
	set -e
	mount --bind "$0/etc" /etc
	mount -t tmpfs bento-private-log /var/log
	[ ! -d /var/mail ] || mount -t tmpfs bento-private-mail /var/mail
	[ ! -d /run/systemd/journal ] || mount -t tmpfs bento-private-journal /run/systemd/journal
	exec "$@"' "$work" "$@"
