#!/bin/sh
# bench/setup-debian-bench.sh [N...] (as root; default 1000 10000): the
# generated setup-debian.sh for a fleet of N systems, run for real (accounts,
# chroots, keys) in a private mount namespace with a copy of /etc
# (bench/lib/private-etc.sh): the first run, which makes every account, and a
# run again with nothing to do. Prints figures, asserts nothing; removes
# everything it made. Run after npm run build.
set -eu
[ "$(id -u)" -eq 0 ] || {
	echo "setup-debian-bench.sh: run me as root" >&2
	exit 1
}
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
[ $# -gt 0 ] || set -- 1000 10000
work=$(mktemp -d /tmp/bento-setup-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
printf '%-8s %-10s %-10s %s\n' systems first again accounts
for n; do
	dir="$work/$n"
	mkdir -p "$dir/keys" "$dir/sshd" "$dir/sbin" "$dir/systemd"
	node "$here/lib/render-setup.mjs" "$dir" "$dir/chroot" "$n"
	cat > "$dir/run.sh" << 'RUN'
set -eu
dir=$1
export BENTO_AUTHORIZED_KEYS_DIR="$dir/keys" BENTO_SSHD_CONFIG_D="$dir/sshd" BENTO_PRUNE_LOGS="$dir/sbin/prune" BENTO_SYSTEMD_DIR="$dir/systemd" BENTO_NO_RELOAD=1
for run in first again; do
	start=$(($(date +%s%N) / 1000000))
	sh "$dir/setup-debian.sh" > "$dir/$run.out" 2> "$dir/$run.err" || { cat "$dir/$run.err" >&2; exit 1; }
	echo "$run $(($(date +%s%N) / 1000000 - start))"
done
echo "accounts $(awk -F: -v home="$dir/chroot/" 'index($6, home) == 1' /etc/passwd | wc -l)"
RUN
	sh "$here/lib/private-etc.sh" "$dir/ns" sh "$dir/run.sh" "$dir" > "$dir/figures"
	printf '%-8s %-10s %-10s %s\n' "$n" "$(awk '$1 == "first" { print $2 " ms" }' "$dir/figures")" "$(awk '$1 == "again" { print $2 " ms" }' "$dir/figures")" "$(awk '$1 == "accounts" { print $2 }' "$dir/figures")"
	rm -rf "$dir"
done
