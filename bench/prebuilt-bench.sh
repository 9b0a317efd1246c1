#!/usr/bin/env bash
# Prebuilt mode, measured (docs/prebuilt.md), as root, after
# `npm run build`; prints figures, asserts nothing:
#
#  1. NAR compression for a closure of real binaries (git, Python, Perl,
#     /usr/sbin of this machine, about 110 MB): for each compression Nix 2.8
#     writes and reads, the bytes a machine downloads, the server's time to
#     write the cache, and the machine's time and peak memory to import it
#     into an empty store;
#  2. a prebuilt machine with a Nix store of its own (the e2e lab: real sshd,
#     the generated scripts unmodified): the bytes and time of its first
#     update (the whole closure) and of an update after a one-package change;
#  3. peak memory of the client's update (GNU time, largest process):
#     prebuilt against a machine of the same fleet that evaluates and builds
#     the same system itself.
#
#   bash bench/prebuilt-bench.sh
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "prebuilt-bench: run me as root (users, sshd, mount namespaces)" >&2
	exit 1
fi
[ -x /usr/bin/time ] || { echo "prebuilt-bench: GNU time is missing (sh scripts/setup.sh installs it)" >&2; exit 1; }
[ -f dist/main.js ] || npm run -s build

export BATS_TEST_DIRNAME=$repo/test/e2e
bats_require_minimum_version() { :; }
export E2E_ID_PREFIX=be2e
# shellcheck source=test/e2e/lib/e2e.bash
. "$repo/test/e2e/lib/e2e.bash"

scratch=''
finish() {
	local status=$?
	trap - EXIT INT TERM HUP
	[ -z "${E2E_BASE:-}" ] || e2e_teardown_suite
	[ -z "$scratch" ] || rm -rf "$scratch"
	exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

SOURCES='"/usr/lib/git-core" "/usr/lib/python3.11" "/usr/share/perl"'
CHANGED_SOURCE=/usr/sbin

# The bench system: a toplevel over copies of real directories of this
# machine; pkg-b (a copy of /usr/sbin) carries the version in pkg-b.version.
bench_packages() {
	cat <<-EOF
		      copyOf = name: source: builtins.derivation {
		        inherit name system;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        args = [ "-c" "mkdir -p \$out && cp -r \${source} \$out/" ];
		      };
		      packages = map (source: copyOf "bench-\${baseNameOf source}" source) [ $SOURCES ];
		      pkgB = copyOf "pkg-b-\${strip (read "pkg-b.version")}" "$CHANGED_SOURCE";
	EOF
}

bench_flake() {
	local name=$1
	cat <<-EOF
		{
		  outputs = { self }:
		    let
		      read = file: if builtins.pathExists (./. + "/\${file}") then builtins.readFile (./. + "/\${file}") else "";
		      strip = text: builtins.replaceStrings [ "\n" ] [ "" ] text;
		      system = "$E2E_NIX_SYSTEM";
		$(bench_packages)
		    in {
		      nixosConfigurations."$name".config.system.build.toplevel = builtins.derivation {
		        name = "nixos-system-$name-24.05";
		        inherit system pkgB packages;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        switchScript = read "switch-to-configuration.in";
		        args = [ "-c" ''
		          mkdir -p "\$out/bin" "\$out/sw"
		          for p in \$packages \$pkgB; do ln -s "\$p" "\$out/sw/"; done
		          printf '%s' "\$switchScript" | sed "s|@out@|\$out|g" > "\$out/bin/switch-to-configuration"
		          chmod +x "\$out/bin/switch-to-configuration"
		        '' ];
		      };
		    };
		}
	EOF
}

mb() {
	awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'
}

# seconds and peak RSS (KiB) of a command: "<s> <KiB>" on fd 3's line.
measure() {
	/usr/bin/time -f '%e %M' -o "$scratch/time" "$@" > "$scratch/measure.out" 2>&1 || { cat "$scratch/measure.out" >&2; return 1; }
	cat "$scratch/time"
}

echo "== 1. NAR compression (Nix $(nix --version | cut -d ' ' -f 3))"
scratch=$(mktemp -d /tmp/bento-prebuilt-bench.XXXXXX)
chmod 0755 "$scratch"
E2E_NIX_SYSTEM=$(nix-instantiate --eval --json --expr builtins.currentSystem | tr -d '"')
printf '1\n' > "$scratch/pkg-b.version"
cat > "$scratch/closure.nix" <<-EOF
	let
	  read = file: builtins.readFile (./. + "/\${file}");
	  strip = text: builtins.replaceStrings [ "\n" ] [ "" ] text;
	  system = "$E2E_NIX_SYSTEM";
	$(bench_packages)
	in builtins.derivation { name = "bench-closure"; inherit system pkgB packages; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "mkdir -p \$out && for p in \$packages \$pkgB; do ln -s \$p \$out/; done" ]; }
EOF
export NIX_CONFIG=$'substituters =\nsandbox = false'
closure=$(nix-build --no-out-link "$scratch/closure.nix" 2> "$scratch/build.out") || { cat "$scratch/build.out" >&2; exit 1; }
nar_bytes=$(nix path-info --extra-experimental-features nix-command -rS "$closure" | awk 'END { print $2 }')
echo "closure: $(nix-store -qR "$closure" | wc -l) store paths, $(mb "$nar_bytes") of NAR"
nix-store --generate-binary-cache-key bench-1 "$scratch/key" "$scratch/key.pub"
printf '%-12s %11s %10s %11s %12s %12s\n' compression downloaded "write (s)" "decode (s)" "import (s)" "import peak"
for spec in none xz zstd "zstd&compression-level=12" "zstd&compression-level=19"; do
	dir=$scratch/cache-${spec//[^a-z0-9]/-}
	written=$(measure nix --extra-experimental-features nix-command copy --to "file://$dir?secret-key=$scratch/key&compression=$spec" "$closure")
	size=$(du -sb "$dir/nar" | cut -f 1)
	# Decompressing alone (Debian's xz and zstd): the machine's CPU per byte downloaded.
	# shellcheck disable=SC2016 # expanded by the inner shell
	case $spec in
	xz) decode=$(measure sh -c 'cat "$0"/nar/*.nar.xz | xz -dc > /dev/null' "$dir") ;;
	zstd*) decode=$(measure sh -c 'cat "$0"/nar/*.nar.zst | zstd -dcq > /dev/null' "$dir") ;;
	*) decode='0.00 0' ;;
	esac
	# The import into an empty store, best of three: what the machine runs.
	best=''
	for _ in 1 2 3; do
		mkdir "$scratch/store"
		# shellcheck disable=SC2016 # expanded by the inner shell
		imported=$(measure unshare -m sh -c 'dir=$1; shift; mount --bind "$dir" /nix && exec "$@"' import "$scratch/store" \
			nix --extra-experimental-features nix-command copy --from "file://$dir" --option trusted-public-keys "$(cat "$scratch/key.pub")" "$closure")
		rm -rf "$scratch/store"
		if [ -z "$best" ] || awk -v a="${imported% *}" -v b="${best% *}" 'BEGIN { exit !(a < b) }'; then best=$imported; fi
	done
	printf '%-12s %11s %10s %11s %12s %9s MB\n' "${spec/&compression-level=/ -}" "$(mb "$size")" "${written% *}" "${decode% *}" "${best% *}" "$((${best#* } / 1024))"
	rm -rf "$dir"
done

echo
echo "== 2. prebuilt updates over SFTP (a machine with its own empty store)"
E2E_NOLOCALBUILD=0 e2e_setup_suite p:prebuilt r:flake > /dev/null
P=$(sys p)
R=$(sys r)
for name in "$P" "$R"; do
	bench_flake "$name" > "$E2E_FLEET/hosts/$name/flake.nix"
	printf '1\n' > "$E2E_FLEET/hosts/$name/pkg-b.version"
	e2e_switch_script > "$E2E_FLEET/hosts/$name/switch-to-configuration.in"
done
# r evaluates and builds itself, in a store of its own too (no substituter: from source).
mkdir -p "$E2E_MACHINES/$R/nix/var/nix/profiles" "$E2E_MACHINES/$R/nix/var/nix/gcroots"
start=$(date +%s.%N)
e2e_deploy > "$E2E_STATE/deploy.out" 2>&1 || { cat "$E2E_STATE/deploy.out" >&2; exit 1; }
echo "deploy (build both, write and sign the closure): $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"

# run_update NAME [bootstrap]: "<seconds> <peak KiB>" of one client run.
run_update() {
	e2e_clear_record "$1"
	E2E_TIME_TO=$E2E_STATE/time e2e_machine "$@" > "$E2E_STATE/run.out" 2>&1 || { cat "$E2E_STATE/run.out" >&2; return 1; }
	cat "$E2E_STATE/time"
}
downloaded_bytes() {
	e2e_record "$1" | awk '$1 == "downloaded" { s += $3 } END { print s + 0 }'
}

first=$(run_update "$P" bootstrap)
first_bytes=$(downloaded_bytes "$P")
rebuild_first=$(run_update "$R" bootstrap)
e2e_bump_package "$P"
e2e_bump_package "$R"
e2e_deploy > "$E2E_STATE/deploy.out" 2>&1 || { cat "$E2E_STATE/deploy.out" >&2; exit 1; }
second=$(run_update "$P")
second_bytes=$(downloaded_bytes "$P")
rebuild_second=$(run_update "$R")
printf '%-40s %12s %10s\n' "" "NAR bytes" "time (s)"
printf '%-40s %12s %10s\n' "first update: the whole closure" "$(mb "$first_bytes")" "${first% *}"
printf '%-40s %12s %10s\n' "after a one-package change (pkg-b)" "$(mb "$second_bytes")" "${second% *}"

echo
echo "== 3. peak memory of the client's update (largest process)"
printf '%-40s %14s %14s\n' "" "prebuilt" "rebuilding"
printf '%-40s %11s MB %11s MB\n' "first update" "$((${first#* } / 1024))" "$((${rebuild_first#* } / 1024))"
printf '%-40s %11s MB %11s MB\n' "after a one-package change" "$((${second#* } / 1024))" "$((${rebuild_second#* } / 1024))"
printf '%-40s %13ss %13ss\n' "time of that update" "${second% *}" "${rebuild_second% *}"
echo "(rebuilding: the machine evaluates this small flake and builds it from source in its own store;"
echo " a real NixOS configuration evaluates nixpkgs' module system, which is where the memory goes)"
