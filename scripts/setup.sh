#!/bin/sh
# Installs everything bento and its tests need on Debian 12, as root: the
# Debian packages (Nix, OpenSSH, shellcheck, bats, ...), the npm
# dependencies, and the build. Safe to run again: it installs only what is
# missing.
set -eu
cd "$(dirname "$0")/.."

missing=""
want() {
	command -v "$1" > /dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" > /dev/null 2>&1 || missing="$missing $2"
}
want nix nix-bin
# The evaluation tests run builtins.fetchMercurial as a hostile configuration would.
want hg mercurial
want sshd openssh-server
want sftp openssh-client
want shellcheck shellcheck
want bats bats
want git git
want rsync rsync
want jq jq
want unshare util-linux
want ip iproute2
want gzip gzip
want flock util-linux
want pgrep procps
want ss iproute2
# The durability test watches the system calls of a deploy.
want strace strace
# The prebuilt suites serve a binary cache with a real web server; the
# benchmarks measure peak memory with GNU time.
want nginx nginx
# The alert rules are checked by Prometheus' own promtool.
want promtool prometheus
# The completion test runs fish's own completion on bento's fish script.
want fish fish
[ -x /usr/bin/time ] || missing="$missing time"

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages:$missing; run me as root (or apt-get install them)" >&2
		exit 1
	fi
	echo "setup: installing$missing"
	apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing > /dev/null
	case " $missing " in
	*" prometheus "*)
		# Only promtool is used; Debian's prometheus service is not needed.
		if [ -d /run/systemd/system ]; then
			systemctl disable --now prometheus > /dev/null 2>&1 || true
			echo "setup: prometheus is for promtool only; its service is stopped and disabled"
		fi
		;;
	esac
	case " $missing " in
	*" nginx "*)
		# Only the tests use nginx, each run with its own instance on
		# 127.0.0.1: Debian's own service (the default site on port 80) is
		# not needed.
		if [ -d /run/systemd/system ]; then
			systemctl disable --now nginx > /dev/null 2>&1 || true
			echo "setup: nginx is for the tests only; its default service is stopped and disabled"
		fi
		;;
	esac
fi

# npm ci again when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ -n "$(find package-lock.json -newer node_modules/.package-lock.json)" ]; then
	echo "setup: installing npm dependencies"
	npm ci --no-audit --no-fund --loglevel=error
fi
npm run -s build
echo "setup: ready (bento $(node dist/main.js --version))"
