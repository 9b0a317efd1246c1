#!/usr/bin/env bash
# Load test of the SFTP server: N machines poll in the same second.
#
#   sudo sh bench/poll-load.sh [N]        (N machines, default 200, at most 1000)
#
# Each machine is a real one as the e2e suites make them (test/e2e/lib): its
# own Unix user on the server (made by the generated setup-debian.sh), its
# own key, its own mount namespace, running the generated update.sh
# unmodified; the server is a real sshd on 127.0.0.1 with the generated
# configuration (MaxStartups and LoginGraceTime sized for N, the Match
# block). Every machine has a log queued from an earlier run and nothing new
# to apply: a run is one poll, one SSH login that reads last_change_date and
# uploads the log. They all start within the same 20 ms, twice: with bento's
# settings, then with OpenSSH's defaults for MaxStartups and LoginGraceTime
# (the same sshd configuration without those two lines), and the figures
# are printed side by side: polls that succeeded, that needed a retry, that
# sshd dropped, logs delivered / still queued / lost, polls per second,
# poll times, the sshd CPU time per poll.
#
# Prints figures; asserts nothing (exit 0 unless the setup fails). Bounded:
# each machine's run is killed after the client's own bound plus 60 s. It
# removes everything it created on exit or Ctrl-C (users, sshd, the
# machines' processes and directories: test/e2e/lib/cleanup.sh). Takes the
# machine-wide test lock, like the tests.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)

count=${1:-200}
case $count in
'' | *[!0-9]*) echo "usage: bench/poll-load.sh [N]" >&2 && exit 2 ;;
esac
if [ "$count" -lt 1 ] || [ "$count" -gt 1000 ]; then
	echo "poll-load: N must be between 1 and 1000" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "poll-load: run me as root (system users, sshd, mount namespaces)" >&2
	exit 1
fi
if [ "${BENTO_TEST_LOCK_HELD:-0}" != 1 ]; then
	exec sh "$repo/scripts/test-lock.sh" bash "$repo/bench/poll-load.sh" "$@"
fi
[ -f dist/main.js ] || npm run -s build

# The e2e machinery (test/e2e/lib), outside bats.
export BATS_TEST_DIRNAME=$repo/test/e2e
bats_require_minimum_version() { :; }
export E2E_ID_PREFIX=load
# shellcheck source=test/e2e/lib/e2e.bash
. "$repo/test/e2e/lib/e2e.bash"

cleanup() {
	if [ -n "${E2E_BASE:-}" ]; then sh "$E2E_LIB/cleanup.sh" "$E2E_BASE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The fleet: one flake with N systems (one evaluation, one batched build),
# bento's defaults for everything the machines use (TIMEOUT, CONNECT_RETRY).
e2e_make_fleet() {
	mkdir -p "$E2E_FLEET/hosts/load" "$E2E_FLEET/keys" "$E2E_FLEET/utils"
	printf '%s\n' "# load test $E2E_ID" "CHROOT_DIR=$E2E_CHROOT" REMOTE_IP=127.0.0.1 "REMOTE_PORT=$E2E_PORT" NOLOCALBUILD=1 > "$E2E_FLEET/config.sh"
	cp "$E2E_REPO/utils/bento.nix" "$E2E_FLEET/utils/bento.nix"
	local i name entries=''
	for i in $(seq 1 "$count"); do
		name=$(sys "$(printf 'm%04d' "$i")")
		E2E_SYSTEMS="$E2E_SYSTEMS $name"
		entries="$entries
      \"$name\".config.system.build.toplevel = builtins.derivation { name = \"nixos-system-$name-24.05\"; system = \"$E2E_NIX_SYSTEM\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo > \$out\" ]; };"
		e2e_make_machine "$name"
	done
	export E2E_SYSTEMS
	printf '{\n  outputs = { self }: {\n    nixosConfigurations = {%s\n    };\n  };\n}\n' "$entries" > "$E2E_FLEET/hosts/load/flake.nix"
}

started=$(date +%s)
echo "poll-load: setting up $count machines (users, keys, chroots, sshd)..."
setup_out=$(mktemp /tmp/bento-poll-load.XXXXXX)
# shellcheck disable=SC2119 # the suite takes no roles: e2e_make_fleet above makes the machines
if ! e2e_setup_suite > "$setup_out" 2>&1; then
	cat "$setup_out" >&2
	rm -f "$setup_out"
	exit 1
fi
rm -f "$setup_out"
e2e_deploy > "$E2E_STATE/deploy.out" 2>&1 || fail "bento deploy failed:" "$(cat "$E2E_STATE/deploy.out")"
# The client's bound, from the comment the client settings carry (templates/partials/client-settings.sh.hbs): `# within N s (CONNECT_RETRY …`.
bound=$(sed -n 's/^# within \([0-9][0-9]*\) s (CONNECT_RETRY.*/\1/p' "$E2E_FLEET/generated/systems/$(sys m0001)/update.sh")
[ -n "$bound" ] || fail "the client's connection bound was not found in update.sh (its comment changed?)"
sized=$(sed -n -e 's/^MaxStartups //p' "$E2E_SERVER/sshd_config")
grace=$(sed -n -e 's/^LoginGraceTime //p' "$E2E_SERVER/sshd_config")
echo "poll-load: set up in $(($(date +%s) - started)) s"

# What each machine runs: says it is ready, waits for the start signal,
# then runs its update.sh (the generated one) as the timer would (killed past the
# client's own bound and a minute); records its status and times (ms).
runner=$E2E_STATE/run-one.sh
cat > "$runner" <<'EOF'
#!/bin/sh
go=$1 update=$2 result=$3 limit=$4
touch "$result.ready"
while [ ! -e "$go" ]; do sleep 0.02; done
start=$(date +%s%3N)
timeout "$limit" /bin/sh "$update" > "$result.out" 2>&1
status=$?
end=$(date +%s%3N)
# The CPU time of the run (its processes: sh, ssh, sftp, ...): the second
# line of times (not in a pipeline: that would be a subshell's).
times > "$result.cpu"
printf '%s %s %s\n' "$status" "$start" "$end" > "$result"
EOF
chmod +x "$runner"

# sshd's CPU time so far (its own and that of every session it reaped), in clock ticks.
sshd_ticks() {
	awk '{ print $14 + $15 + $16 + $17 }' "/proc/$(cat "$E2E_SERVER/sshd.pid")/stat"
}

# round NAME: every machine polls at once; the figures go to $E2E_STATE/NAME.*
round() {
	local name=$1 dir=$E2E_STATE/$1 machine log i=0
	mkdir -p "$dir"
	for machine in $E2E_SYSTEMS; do
		# Nothing new to apply (the state the client kept after its last run), one log queued.
		cp "$E2E_CHROOT/$machine/last_change_date" "$E2E_MACHINES/$machine/var-bento/.bento/state" 2> /dev/null ||
			{ mkdir -p "$E2E_MACHINES/$machine/var-bento/.bento/pending" && cp "$E2E_CHROOT/$machine/last_change_date" "$E2E_MACHINES/$machine/var-bento/.bento/state"; }
		# Its update.sh and the library beside it, as a bootstrapped machine has them.
		cp "$E2E_FLEET/generated/systems/$machine/update.sh" "$E2E_FLEET/generated/client/bento-client.sh" "$E2E_MACHINES/$machine/var-bento/"
		log=20240101-0000_00000000000000000000000000000000-load-${name}_success.log.gz
		printf 'round %s\n' "$name" | gzip > "$E2E_MACHINES/$machine/var-bento/.bento/pending/$log"
	done
	local ticks_before
	ticks_before=$(sshd_ticks)
	rm -f "$dir/go"
	for machine in $E2E_SYSTEMS; do
		e2e_machine "$machine" "$runner" "$dir/go" /var/bento/update.sh "$dir/$machine" $((bound + 60)) > /dev/null 2>&1 &
	done
	# Every namespace set up and waiting (at most a minute), then all at once.
	while [ "$(find "$dir" -name '*.ready' | wc -l)" -lt "$count" ] && [ "$i" -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	touch "$dir/go"
	wait || true
	# Every session ended (the clients close their connection): sshd reaped them.
	i=0
	while [ -n "$(pgrep -P "$(cat "$E2E_SERVER/sshd.pid")")" ] && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo $(($(sshd_ticks) - ticks_before)) > "$dir/sshd-ticks"
	local delivered=0 kept=0 lost=0 retried=0 failed=0
	for machine in $E2E_SYSTEMS; do
		# Its update.sh and the library beside it, as a bootstrapped machine has them.
		cp "$E2E_FLEET/generated/systems/$machine/update.sh" "$E2E_FLEET/generated/client/bento-client.sh" "$E2E_MACHINES/$machine/var-bento/"
		log=20240101-0000_00000000000000000000000000000000-load-${name}_success.log.gz
		if [ -f "$E2E_CHROOT/$machine/logs/$log" ]; then
			delivered=$((delivered + 1))
		elif [ -f "$E2E_MACHINES/$machine/var-bento/.bento/pending/$log" ]; then
			kept=$((kept + 1))
		else
			lost=$((lost + 1))
		fi
		grep -q 'trying again in' "$dir/$machine.out" 2> /dev/null && retried=$((retried + 1))
		[ "$(cut -d ' ' -f 1 "$dir/$machine" 2> /dev/null)" = 0 ] || failed=$((failed + 1))
	done
	printf '%s %s %s %s %s\n' "$delivered" "$kept" "$lost" "$retried" "$failed" > "$dir/counts"
}

# Runs the round on an sshd with CONFIG (a variant of the suite's configuration).
round_with() {
	local name=$1 config=$2
	e2e_stop_sshd
	cp "$config" "$E2E_SERVER/sshd_config"
	: > "$E2E_SERVER/sshd.log"
	e2e_start_sshd
	round "$name"
	grep -c 'past MaxStartups' "$E2E_SERVER/sshd.log" > "$E2E_STATE/$name/dropped" || true
}

cp "$E2E_SERVER/sshd_config" "$E2E_STATE/sshd_config.bento"
grep -v -e '^MaxStartups ' -e '^LoginGraceTime ' "$E2E_STATE/sshd_config.bento" > "$E2E_STATE/sshd_config.openssh"
/usr/sbin/sshd -t -f "$E2E_STATE/sshd_config.openssh"

echo "poll-load: round 1, bento's settings ($sized, LoginGraceTime $grace)..."
round_with bento "$E2E_STATE/sshd_config.bento"
echo "poll-load: round 2, OpenSSH's defaults (10:30:100, LoginGraceTime 120)..."
round_with openssh "$E2E_STATE/sshd_config.openssh"

# figures NAME: one value per line, in the order of the table below.
figures() {
	local dir=$E2E_STATE/$1 delivered kept lost retried failed
	read -r delivered kept lost retried failed < "$dir/counts"
	node - "$dir" "$count" "$(getconf CLK_TCK)" "$(cat "$dir/sshd-ticks")" <<-'EOF'
		const fs = require('fs');
		const [dir, count, hz, ticks] = process.argv.slice(2);
		const runs = fs.readdirSync(dir).filter((f) => /^[a-z0-9_-]+$/.test(f) && f.includes('-m'))
		  .map((f) => fs.readFileSync(`${dir}/${f}`, 'utf8').trim().split(' ').map(Number))
		  .filter((r) => r.length === 3);
		const ok = runs.filter(([status]) => status === 0);
		const times = ok.map(([, start, end]) => (end - start) / 1000).sort((a, b) => a - b);
		const pick = (q) => (times.length ? times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)] : NaN);
		const first = Math.min(...runs.map(([, start]) => start));
		const last = Math.max(...ok.map(([, , end]) => end));
		const cpu = Number(ticks) / Number(hz);
		console.log(`${ok.length}/${count}`);
		console.log((ok.length / ((last - first) / 1000)).toFixed(1));
		console.log(`${pick(0.5).toFixed(2)} / ${pick(0.99).toFixed(2)} / ${pick(1).toFixed(2)} s`);
		console.log(`${((cpu * 1000) / Math.max(1, ok.length)).toFixed(1)} ms (${cpu.toFixed(2)} s in all)`);
		// "0m0.120s 0m0.050s": user and system time of a run's processes.
		const seconds = (text) => text.split(/\s+/).filter(Boolean).reduce((sum, t) => { const m = /^(\d+)m([\d.]+)s$/.exec(t); return m ? sum + Number(m[1]) * 60 + Number(m[2]) : sum; }, 0);
		const clients = fs.readdirSync(dir).filter((f) => f.endsWith('.cpu')).map((f) => seconds(fs.readFileSync(`${dir}/${f}`, 'utf8').split('\n')[1] ?? ''));
		const clientCpu = clients.reduce((a, b) => a + b, 0);
		console.log(`${((clientCpu * 1000) / Math.max(1, clients.length)).toFixed(0)} ms (${clientCpu.toFixed(1)} s in all)`);
	EOF
	echo "$retried"
	cat "$dir/dropped"
	echo "$delivered / $kept / $lost"
}

# failures NAME: why the polls that failed failed (their last message, counted).
failures() {
	local dir=$E2E_STATE/$1 machine
	for machine in $E2E_SYSTEMS; do
		[ "$(cut -d ' ' -f 1 "$dir/$machine" 2> /dev/null)" = 0 ] && continue
		tail -n 1 "$dir/$machine.out" 2> /dev/null | sed -e "s/$machine/NAME/g" -e 's/port [0-9]*/port P/g' || echo "(no output)"
	done | sort | uniq -c | sort -rn | head -n 5
}

mapfile -t bento < <(figures bento)
mapfile -t openssh < <(figures openssh)
labels=(
	'polls that succeeded'
	'polls per second, sustained'
	'poll time p50 / p99 / max (ok)'
	'sshd CPU time per poll'
	'client CPU time per poll'
	'polls that needed a retry'
	'connections sshd dropped'
	'queued logs sent / kept / lost'
)
echo
echo "poll-load: $count machines polling at once; each its own user, key and mount namespace,"
echo "the generated update.sh against the generated sshd configuration on 127.0.0.1 ($(nproc) CPUs);"
echo "a run that cannot connect is retried for CONNECT_RETRY (one budget for the whole run), giving up within $bound s."
printf '\n%-32s %-28s %s\n' '' "bento ($sized, $grace s)" 'OpenSSH (10:30:100, 120 s)'
for i in "${!labels[@]}"; do
	printf '%-32s %-28s %s\n' "${labels[$i]}" "${bento[$i]}" "${openssh[$i]}"
done
for name in bento openssh; do
	if [ -n "$(failures "$name")" ]; then
		echo
		echo "why polls failed ($name):"
		failures "$name"
	fi
done
echo
echo "poll-load: done in $(($(date +%s) - started)) s; removing the users, sshd and machines"
