# Helpers of the bento end-to-end suites (bats, as root).
#
# Each suite (one .bats file) gets, in setup_file (e2e_setup_suite):
# - a fleet in $E2E_FLEET: config.sh, one host directory per system (a tiny
#   flake whose toplevel is shaped like a NixOS system, or a configuration.nix
#   built with the offline <nixpkgs/nixos> of example/), keys/ from the
#   machines' real ssh keys; `bento generate` renders it;
# - the server: the generated server/setup-debian.sh creates the real group,
#   users and chroots (under /srv: sshd wants every component root-owned),
#   and a real sshd on 127.0.0.1:$E2E_PORT runs the generated Match block;
#   `bento deploy` publishes into CHROOT_DIR;
# - simulated machines: each runs the generated bootstrap.sh, then its own
#   /var/bento/update.sh, unmodified, as root, in a mount namespace of its own
#   (machine.sh), as its bento-upgrade unit runs it: the unit's ExecStart with
#   exactly the environment the evaluated client module gives the unit (its
#   `path` packages, made of this machine's tools and the stand-ins of
#   ../stand-ins, and its `environment`), nothing else.
# teardown_file (e2e_teardown_suite) and run.sh's trap remove it all again
# (cleanup.sh). Names are unique per suite: be2e + 5 random characters.

bats_require_minimum_version 1.5.0

E2E_REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
E2E_LIB=$E2E_REPO/test/e2e/lib
E2E_STANDINS=$E2E_REPO/test/e2e/stand-ins
# No network here: no substituters. Flakes are not enabled globally: bento and
# the client scripts must ask for them themselves.
export NIX_CONFIG=$'substituters =\nsandbox = false'
# Systems without flakes build <nixpkgs/nixos>: the repository's offline one,
# on the server (bento deploy) and on the machines alike.
export NIX_PATH="nixpkgs=$E2E_REPO/example/offline-nixpkgs"
NIX_FLAKES=(--extra-experimental-features 'nix-command flakes')

# NixOS's default search path (nix.nixPath, nixos/modules/config/nix-channel.nix),
# which becomes the session variable NIX_PATH.
E2E_NIXOS_NIX_PATH=(
	nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos
	nixos-config=/etc/nixos/configuration.nix
	/nix/var/nix/profiles/per-user/root/channels
)

# ---------------------------------------------------------------- assertions

fail() {
	printf '%s\n' "$@" >&2
	return 1
}

# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value} differs" "expected: $2" "actual:   $1"
}

# assert_contains TEXT NEEDLE
assert_contains() {
	case $1 in
	*"$2"*) ;;
	*) fail "expected to find: $2" "in:" "$1" ;;
	esac
}

assert_not_contains() {
	case $1 in
	*"$2"*) fail "expected not to find: $2" "in:" "$1" ;;
	esac
}

# assert_match TEXT ERE
assert_match() {
	printf '%s\n' "$1" | grep -Eq -- "$2" || fail "expected a line matching: $2" "in:" "$1"
}

# assert_build_failure NAME PROFILE TEXT: after a run whose build failed:
# built but not switched, still on PROFILE, one failure log named after that
# system and holding TEXT, and `bento status` says failing.
assert_build_failure() {
	local name=$1 profile=$2 text=$3 record failure
	record=$(e2e_record "$name")
	assert_contains "$record" "nixos-rebuild build"
	assert_not_contains "$record" "nixos-rebuild switch"
	assert_eq "$(e2e_profile "$name")" "$profile" "system profile"
	failure=$(e2e_logs "$name" | grep _failure)
	assert_match "$failure" "$(e2e_log_name_regex "$name" failure)"
	assert_eq "$(printf '%s\n' "$failure" | cut -d _ -f 2)" "$(basename "$profile")" "store path in the log name"
	assert_contains "$(e2e_log_text "$name" _failure.log.gz)" "$text"
	assert_eq "$(e2e_status_state "$name")" failing "bento status"
}

# ------------------------------------------------------------ NixOS modules

# e2e_eval_nixos MODULES ATTRIBUTE [PKGS_DIR]: JSON of ATTRIBUTE of the NixOS
# modules MODULES (a Nix list) evaluated with the real nixpkgs lib and the
# NixOS options bento sets (test/fixtures/nixos/eval.nix); packages are
# PKGS_DIR/<name> (default /pkgs).
e2e_eval_nixos() {
	nix-instantiate --eval --strict --json "$E2E_REPO/test/fixtures/nixos/eval.nix" \
		--arg modules "$1" --argstr pkgsDir "${3:-/pkgs}" -A "$2"
}

# NixOS's NIX_PATH: as the Nix list NixOS sets, and as the variable's value.
e2e_nixos_nix_path_list() {
	printf '"%s" ' "${E2E_NIXOS_NIX_PATH[@]}"
}

e2e_nixos_nix_path() {
	local IFS=:
	printf '%s\n' "${E2E_NIXOS_NIX_PATH[*]}"
}

# --------------------------------------------------------------- the suite

# The system name of a role ("a" → be2exxxxx-a).
sys() {
	printf '%s-%s\n' "$E2E_ID" "$1"
}

bento() {
	node "$E2E_REPO/dist/main.js" --dir "$E2E_FLEET" "$@"
}

# e2e_setup_suite ROLE[:KIND]... — KIND: flake (default), nonflake,
# selfupdate (a flake with a local path: input and the SELF_UPDATE flag),
# prebuilt (a flake with the PREBUILT flag whose system depends on several
# packages, on a machine with a Nix store of its own where evaluating and
# building fail) or prebuilt-nonflake (the same without flakes). Prebuilt
# systems need E2E_NOLOCALBUILD=0.
e2e_setup_suite() {
	[ "$(id -u)" -eq 0 ] || fail "the e2e suites need root (users, sshd, mount namespaces)"
	[ -f "$E2E_REPO/dist/main.js" ] || fail "dist/ is missing: run npm run build"
	umask 022
	local suffix
	suffix=$(tr -dc 'a-z0-9' < /dev/urandom | head -c 5)
	# The demo (scripts/demo.sh) names its machines demo<suffix>-<role>.
	export E2E_ID="${E2E_ID_PREFIX:-be2e}$suffix"
	export E2E_BASE="/srv/bento-e2e-$E2E_ID"
	export E2E_STATE=$E2E_BASE/.e2e
	export E2E_CHROOT=$E2E_BASE/chroot
	export E2E_SERVER=$E2E_BASE/server
	export E2E_FLEET=$E2E_BASE/fleet
	export E2E_MACHINES=$E2E_BASE/machines
	export E2E_INPUTS=$E2E_BASE/inputs
	export E2E_SYSTEMS=""
	# What bento status remembers between runs stays with the suite.
	export XDG_CACHE_HOME=$E2E_STATE/cache
	# run.sh cleans up after suites that could not (killed bats, ...).
	if [ -n "${E2E_REGISTRY:-}" ]; then printf '%s\n' "$E2E_BASE" >> "$E2E_REGISTRY"; fi

	local owner
	owner=$(stat -c '%u %a' /srv)
	[ "$owner" = "0 755" ] || fail "/srv must be root-owned 0755 for sshd's ChrootDirectory (it is uid/mode $owner)"
	mkdir -m 0755 "$E2E_BASE"
	mkdir -p "$E2E_STATE" "$E2E_SERVER" "$E2E_MACHINES" "$E2E_INPUTS"
	local mountpoint
	for mountpoint in /var/bento /root/.ssh /boot; do
		if [ ! -e "$mountpoint" ]; then
			mkdir -m 0700 "$mountpoint"
			printf '%s\n' "$mountpoint" >> "$E2E_STATE/mountpoints"
		fi
	done
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd
		touch "$E2E_STATE/run-sshd-created"
	fi
	E2E_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
	export E2E_PORT
	E2E_NIX_SYSTEM=$(nix-instantiate --eval --json --expr builtins.currentSystem | tr -d '"')
	export E2E_NIX_SYSTEM

	# E2E_CHROOT_TMPFS=SIZE: CHROOT_DIR on a tmpfs of that size (mounted
	# nosuid,nodev,noexec, as docs/sftp-server.md advises), to fill the server's disk.
	if [ -n "${E2E_CHROOT_TMPFS:-}" ]; then
		mkdir -m 0755 "$E2E_CHROOT"
		mount -t tmpfs -o "size=$E2E_CHROOT_TMPFS,mode=0755,nosuid,nodev,noexec" "bento-e2e-$E2E_ID" "$E2E_CHROOT"
	fi
	e2e_make_tools
	e2e_make_fleet "$@"
	mkdir -m 0700 "$E2E_BASE/signing"
	bento generate > "$E2E_STATE/generate.out" 2>&1 || fail "bento generate failed:" "$(cat "$E2E_STATE/generate.out")"
	# The client module as a machine receives it (bento-module.nix and bento-units.nix next to
	# utils/): what its units are evaluated from.
	mkdir -p "$E2E_STATE/client/utils"
	cp "$E2E_REPO/utils/bento.nix" "$E2E_STATE/client/utils/bento.nix"
	cp "$E2E_FLEET/generated/client/bento-units.nix" "$E2E_FLEET/generated/client/bento-module.nix" "$E2E_STATE/client/"
	e2e_setup_server
	e2e_start_sshd
}

e2e_teardown_suite() {
	if [ -n "${E2E_BASE:-}" ]; then
		sh "$E2E_LIB/cleanup.sh" "$E2E_BASE"
	fi
}

e2e_make_fleet() {
	mkdir -p "$E2E_FLEET/hosts" "$E2E_FLEET/keys" "$E2E_FLEET/utils"
	cat > "$E2E_FLEET/config.sh" <<-EOF
		# e2e fleet $E2E_ID
		CHROOT_DIR=$E2E_CHROOT
		REMOTE_IP=127.0.0.1
		REMOTE_PORT=$E2E_PORT
		TIMEOUT=5
		# One attempt per session, as each suite expects; 25-failover.bats and
		# bench/poll-load.sh set E2E_CONNECT_RETRY to see the retries.
		CONNECT_RETRY=${E2E_CONNECT_RETRY:-0}
		# The machines build: their logs then hold real build output
		# (E2E_NOLOCALBUILD=0: the server builds, for prebuilt systems).
		NOLOCALBUILD=${E2E_NOLOCALBUILD:-1}
		REBUILD_ARGS="--fallback"
		# The server's Nix signing key (prebuilt systems): outside the fleet
		# and the chroot, as bento demands.
		SIGNING_KEY=$E2E_BASE/signing/key
	EOF
	if [ -n "${E2E_CONFIG_EXTRA:-}" ]; then printf '%s\n' "$E2E_CONFIG_EXTRA" >> "$E2E_FLEET/config.sh"; fi
	cp "$E2E_REPO/utils/bento.nix" "$E2E_FLEET/utils/bento.nix"
	local spec role kind name
	for spec in "$@"; do
		role=${spec%%:*}
		kind=flake
		case $spec in *:*) kind=${spec#*:} ;; esac
		name=$(sys "$role")
		E2E_SYSTEMS="$E2E_SYSTEMS $name"
		e2e_make_host "$name" "$kind"
		e2e_make_machine "$name"
		case $kind in
		prebuilt*) e2e_machine_prebuilt "$name" ;;
		esac
	done
	export E2E_SYSTEMS
}

# e2e_make_host NAME KIND: hosts/NAME/, one system per host directory.
e2e_make_host() {
	local name=$1 kind=$2 dir=$E2E_FLEET/hosts/$1
	mkdir -p "$dir"
	ln -s ../../utils "$dir/utils"
	printf '%s\n' "$kind" > "$E2E_STATE/kind-$name"
	# Every system has its bin/switch-to-configuration, as on NixOS.
	e2e_switch_script > "$dir/switch-to-configuration.in"
	case $kind in
	nonflake)
		e2e_write_revision "$name" 1
		;;
	flake | selfupdate)
		local inputs='' input_text='""'
		if [ "$kind" = selfupdate ]; then
			mkdir -p "$E2E_INPUTS/$name"
			printf '1\n' > "$E2E_INPUTS/$name/version"
			inputs="inputs.extra = { url = \"path:$E2E_INPUTS/$name\"; flake = false; };"
			input_text='builtins.readFile (inputs.extra + "/version")'
			touch "$dir/SELF_UPDATE"
		fi
		e2e_flake_text "$name" "$inputs" "$input_text" > "$dir/flake.nix"
		e2e_write_revision "$name" 1
		if [ "$kind" = selfupdate ]; then
			(cd "$dir" && nix "${NIX_FLAKES[@]}" flake lock 2> "$E2E_STATE/lock-$name.out") ||
				fail "nix flake lock failed:" "$(cat "$E2E_STATE/lock-$name.out")"
		fi
		;;
	prebuilt)
		e2e_prebuilt_flake_text "$name" > "$dir/flake.nix"
		touch "$dir/PREBUILT"
		printf '1\n' > "$dir/pkg-b.version"
		e2e_write_revision "$name" 1
		;;
	prebuilt-nonflake)
		touch "$dir/PREBUILT"
		e2e_write_revision "$name" 1
		;;
	*) fail "unknown kind $kind" ;;
	esac
}

# The system of a prebuilt flake: a toplevel shaped like a NixOS system
# that depends on several store paths (kernel, initrd, modules, and the
# packages pkg-a, pkg-b, pkg-c of 64-256 KiB of random bytes each; pkg-b's
# version is in pkg-b.version, the kernel's in kernel-version), and whose bin/switch-to-configuration
# records how it was called (in /run/switch-to-configuration.record of the
# machine) and makes the system the current one, as NixOS's activation does.
e2e_prebuilt_flake_text() {
	local name=$1
	cat <<-EOF
		# e2e prebuilt system $name (generated by test/e2e/lib/e2e.bash)
		{
		  outputs = { self }:
		    let
		      read = file: if builtins.pathExists (./. + "/\${file}") then builtins.readFile (./. + "/\${file}") else "";
		      strip = text: builtins.replaceStrings [ "\n" ] [ "" ] text;
		      system = "$E2E_NIX_SYSTEM";
		      package = name: script: builtins.derivation {
		        inherit name system;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        args = [ "-c" script ];
		      };
		      blob = name: kib: package name "mkdir -p \$out/share && head -c \${toString (kib * 1024)} /dev/urandom > \$out/share/\${name}.bin";
		      kernelVersion = let v = strip (read "kernel-version"); in if v == "" then "6.1.0" else v;
		      kernel = package "linux-\${kernelVersion}" "mkdir -p \$out && echo 'linux \${kernelVersion}' > \$out/bzImage";
		      initrd = package "initrd-linux-\${kernelVersion}" "mkdir -p \$out && echo 'initrd \${kernelVersion}' > \$out/initrd";
		      modules = package "linux-\${kernelVersion}-modules" "mkdir -p \$out/lib/modules/\${kernelVersion}";
		      pkgA = blob "pkg-a-1" 256;
		      pkgB = blob "pkg-b-\${strip (read "pkg-b.version")}" 128;
		      pkgC = blob "pkg-c-1" 64;
		    in {
		      nixosConfigurations."$name".config.system.build.toplevel = builtins.derivation {
		        name = "nixos-system-$name-24.05";
		        inherit system kernel initrd modules pkgA pkgB pkgC;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        configuration = read "system.conf";
		        switchScript = read "switch-to-configuration.in";
		        args = [ "-c" ''
		          mkdir -p "\$out/bin" "\$out/sw"
		          printf '%s\n' "\$configuration" > "\$out/configuration"
		          ln -s "\$kernel/bzImage" "\$out/kernel"
		          ln -s "\$initrd/initrd" "\$out/initrd"
		          ln -s "\$modules" "\$out/kernel-modules"
		          ln -s "\$pkgA" "\$out/sw/pkg-a"
		          ln -s "\$pkgB" "\$out/sw/pkg-b"
		          ln -s "\$pkgC" "\$out/sw/pkg-c"
		          printf '%s' "\$switchScript" | sed "s|@out@|\$out|g" > "\$out/bin/switch-to-configuration"
		          chmod +x "\$out/bin/switch-to-configuration"
		        '' ];
		      };
		    };
		}
	EOF
}

# The bin/switch-to-configuration of every e2e system (@out@: the system's
# store path), as NixOS's does it (switch-to-configuration-ng's
# do_system_switch, pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs
# in nixpkgs): `switch` and `boot` install the boot loader first (as
# systemd-boot-builder.py does: one entry per generation of the system
# profile that exists now, the others removed, the default the system being
# switched to); `boot` stops there; `switch` and `test` then activate the
# system (/run/current-system) and exit 4 when any unit is failed afterwards
# (the units the new system breaks, its failed-units file, and those failed
# on the machine whatever runs, /run/bento-e2e/failed-units), after the
# activation, as the real one does. Each call is recorded in the machine's
# /run/switch-to-configuration.record. /run/bento-e2e/fail-boot-loader
# makes the boot loader's installation fail (exit 1, nothing activated).
e2e_switch_script() {
	cat <<-'EOF'
		#!/bin/sh
		PATH=/usr/bin:/bin
		printf 'switch-to-configuration @out@ %s NIXOS_INSTALL_BOOTLOADER=%s\n' "$*" "${NIXOS_INSTALL_BOOTLOADER-unset}" >> /run/switch-to-configuration.record
		case $1 in
		switch | boot)
			if [ -e /run/bento-e2e/fail-boot-loader ]; then
				echo "Failed to install bootloader" >&2
				exit 1
			fi
			mkdir -p /boot/loader/entries
			rm -f /boot/loader/entries/nixos-generation-*.conf
			default=''
			for link in /nix/var/nix/profiles/system-*-link; do
				[ -L "$link" ] || continue
				generation=${link##*/system-}
				generation=${generation%-link}
				printf 'title NixOS\nversion Generation %s\nlinux %s/kernel\n' "$generation" "$(readlink -f "$link")" > "/boot/loader/entries/nixos-generation-$generation.conf"
				[ "$(readlink -f "$link")" = @out@ ] && default=$generation
			done
			printf 'default nixos-generation-%s.conf\n' "$default" > /boot/loader/loader.conf
			;;
		esac
		[ "$1" = boot ] && exit 0
		echo "activating the configuration @out@"
		ln -sfn @out@ /run/current-system
		failed=$(cat /run/current-system/failed-units /run/bento-e2e/failed-units 2> /dev/null | sort -u | tr '\n' ' ')
		if [ -n "$failed" ]; then
			echo "warning: the following units failed: ${failed% }" >&2
			exit 4
		fi
		exit 0
	EOF
}

# e2e_bump_package NAME: a one-package change: pkg-b gets a new version.
e2e_bump_package() {
	local file=$E2E_FLEET/hosts/$1/pkg-b.version
	printf '%s\n' $(($(cat "$file") + 1)) > "$file"
}

# A flake whose toplevel is a small real derivation shaped like a NixOS
# system: kernel, initrd and kernel-modules are links into packages of their
# own (as on NixOS, so an unchanged kernel resolves to the same path). Files
# of the host directory steer it: system.conf (any change is a new system),
# kernel-version, build-extra.sh (shell run by the builder first),
# health-check and health.conf (its etc/bento/, as services.bento.healthCheck
# makes them), failed-units (units the systemctl stand-in lists as failed
# while this system runs), switch-to-configuration.in (its
# bin/switch-to-configuration: e2e_switch_script).
e2e_flake_text() {
	local name=$1 inputs=$2 input_text=$3
	cat <<-EOF
		# e2e test system $name (generated by test/e2e/lib/e2e.bash)
		{
		  $inputs
		  outputs = { self, ... }@inputs:
		    let
		      read = file: if builtins.pathExists (./. + "/\${file}") then builtins.readFile (./. + "/\${file}") else "";
		      system = "$E2E_NIX_SYSTEM";
		      kernelVersion = let v = builtins.replaceStrings [ "\n" ] [ "" ] (read "kernel-version"); in if v == "" then "6.1.0" else v;
		      package = name: script: builtins.derivation {
		        inherit name system;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        args = [ "-c" script ];
		      };
		      kernel = package "linux-\${kernelVersion}" "mkdir -p \$out && echo 'linux \${kernelVersion}' > \$out/bzImage";
		      initrd = package "initrd-linux-\${kernelVersion}" "mkdir -p \$out && echo 'initrd \${kernelVersion}' > \$out/initrd";
		      modules = package "linux-\${kernelVersion}-modules" "mkdir -p \$out/lib/modules/\${kernelVersion}";
		    in {
		      nixosConfigurations."$name".config.system.build.toplevel = builtins.derivation {
		        name = "nixos-system-$name-24.05";
		        inherit system kernel initrd modules;
		        builder = "/bin/sh";
		        PATH = "/usr/bin:/bin";
		        configuration = read "system.conf";
		        extraBuild = read "build-extra.sh";
		        # The lab's services.bento.healthCheck: etc/bento/ of the system, as the module makes it.
		        healthCheck = read "health-check";
		        healthConf = read "health.conf";
		        # Units that fail once this system runs (the systemctl stand-in lists them).
		        failedUnits = read "failed-units";
		        switchScript = read "switch-to-configuration.in";
		        input = $input_text;
		        args = [ "-c" ''
		          echo "e2e: building the system of $name"
		          eval "\$extraBuild"
		          mkdir -p "\$out"
		          printf '%s\n' "\$configuration" > "\$out/configuration"
		          printf '%s\n' "\$input" > "\$out/input"
		          ln -s "\$kernel/bzImage" "\$out/kernel"
		          ln -s "\$initrd/initrd" "\$out/initrd"
		          ln -s "\$modules" "\$out/kernel-modules"
		          if [ -n "\$healthCheck\$healthConf" ]; then
		            mkdir -p "\$out/etc/bento"
		            [ -z "\$healthCheck" ] || printf '%s' "\$healthCheck" > "\$out/etc/bento/health-check"
		            [ -z "\$healthConf" ] || printf '%s' "\$healthConf" > "\$out/etc/bento/health.conf"
		          fi
		          [ -z "\$failedUnits" ] || printf '%s' "\$failedUnits" > "\$out/failed-units"
		          mkdir -p "\$out/bin"
		          printf '%s' "\$switchScript" | sed "s|@out@|\$out|g" > "\$out/bin/switch-to-configuration"
		          chmod +x "\$out/bin/switch-to-configuration"
		          echo "e2e: built the system of $name"
		        '' ];
		      };
		    };
		}
	EOF
}

# e2e_write_revision NAME N: the machine's configuration at revision N (a
# new system: every revision of every suite is a new store path).
e2e_write_revision() {
	local name=$1 revision=$2 dir=$E2E_FLEET/hosts/$1
	printf '%s\n' "$revision" > "$E2E_STATE/revision-$name"
	if [ -f "$dir/flake.nix" ]; then
		printf 'suite %s, system %s, revision %s\n' "$E2E_ID" "$name" "$revision" > "$dir/system.conf"
	else
		printf '{ ... }:\n{\n  # suite %s, revision %s\n  networking.hostName = "%s";\n}\n' "$E2E_ID" "$revision" "$name" > "$dir/configuration.nix"
	fi
}

# e2e_new_revision NAME: changes the machine's configuration (a new system).
e2e_new_revision() {
	local revision
	revision=$(cat "$E2E_STATE/revision-$1")
	e2e_write_revision "$1" $((revision + 1))
}

# e2e_make_tools: $E2E_BASE/tools/<attribute>, this machine's tools of each
# package the client units name (make-tools.sh); systemd and nixos-rebuild
# are stand-ins (e2e_make_machine).
e2e_make_tools() {
	sh "$E2E_LIB/make-tools.sh" "$E2E_BASE/tools" || fail "make-tools.sh failed"
}

# e2e_wrapper FILE TARGET [LINE...]: an executable FILE that runs the LINEs
# (shell, e.g. exports), then execs TARGET with its arguments.
e2e_wrapper() {
	local file=$1 target=$2
	shift 2
	mkdir -p "$(dirname "$file")"
	rm -f "$file"
	{
		printf '#!/bin/sh\n'
		if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
		printf 'exec %s "$@"\n' "$(e2e_sh_quote "$target")"
	} > "$file"
	chmod +x "$file"
}

# A word quoted for sh.
e2e_sh_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# e2e_make_machine NAME: the machine's directories and root ssh key (its
# public key becomes keys/NAME.pub of the fleet), what a NixOS machine has
# (/run/systemd/system, the root's channel "nixos" that NixOS's NIX_PATH
# names: here example/offline-nixpkgs), and its packages, pkgs/<attribute>:
# the tools of this machine (e2e_make_tools), and stand-ins that record into
# the machine's record and read its hooks: systemd (systemctl, systemd-run)
# and nixos-rebuild, which, like nixpkgs' (pkgs/by-name/ni/nixos-rebuild/package.nix),
# puts coreutils, sed, grep, jq and util-linux, then its nix, first on its PATH.
e2e_make_machine() {
	local name=$1 m=$E2E_MACHINES/$1 tools=$E2E_BASE/tools attribute
	mkdir -p "$m/ssh" "$m/profiles/per-user/root/channels" "$m/gcroots/per-user/root" "$m/run/systemd/system" "$m/run/bento-e2e" "$m/hooks" "$m/boot"
	ln -s "$E2E_REPO/example/offline-nixpkgs" "$m/profiles/per-user/root/channels/nixos"
	# /var/bento as the client module's tmpfiles rule makes it (a machine that
	# does not have the module yet has none: e2e_machine_without_var_bento).
	mkdir -m 0700 "$m/var-bento"
	chmod 0700 "$m/ssh"
	touch "$m/record"
	ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$m/ssh/id_ed25519"
	cp "$m/ssh/id_ed25519.pub" "$E2E_FLEET/keys/$name.pub"

	mkdir -p "$m/pkgs"
	for attribute in "$tools"/*; do
		ln -s "$attribute" "$m/pkgs/${attribute##*/}"
	done
	local stand_in_env
	stand_in_env="export E2E_RECORD=$(e2e_sh_quote "$m/record") E2E_HOOKS=$(e2e_sh_quote "$m/hooks")"
	e2e_wrapper "$m/pkgs/systemd/bin/systemctl" "$E2E_STANDINS/systemctl" "$stand_in_env"
	e2e_wrapper "$m/pkgs/systemd/bin/systemd-run" "$E2E_STANDINS/systemd-run" "$stand_in_env"
	e2e_wrapper "$m/pkgs/nixos-rebuild/bin/nixos-rebuild" "$E2E_STANDINS/nixos-rebuild" "$stand_in_env" \
		"PATH=$(e2e_sh_quote "$tools/coreutils/bin:$tools/gnused/bin:$tools/gnugrep/bin:$tools/jq/bin:$tools/util-linux/bin:$m/pkgs/nix/bin"):\$PATH"
}

# e2e_machine_prebuilt NAME: the machine gets a Nix store of its own (an
# empty nix/ bound over /nix: nothing shared with the server's store), and
# evaluating or building fails there: its nix package is made of the
# stand-ins of ../no-eval (nix, nix-env and nix-store let through what such
# a machine may do; nix-build, nix-instantiate and nix-shell fail), so is
# its nixos-rebuild, and its Nix has max-jobs = 0 (e2e_machine_module).
e2e_machine_prebuilt() {
	local m=$E2E_MACHINES/$1 tool stand_in_env
	mkdir -p "$m/nix/var/nix/profiles" "$m/nix/var/nix/gcroots"
	touch "$m/no-eval"
	stand_in_env="export E2E_RECORD=$(e2e_sh_quote "$m/record")"
	rm "$m/pkgs/nix"
	mkdir -p "$m/pkgs/nix/bin" "$m/pkgs/nix/sbin"
	for tool in "$E2E_BASE/tools/nix/bin"/*; do
		case ${tool##*/} in
		nix | nix-env | nix-store | nix-build | nix-instantiate | nix-shell)
			e2e_wrapper "$m/pkgs/nix/bin/${tool##*/}" "$E2E_REPO/test/e2e/no-eval/${tool##*/}" "$stand_in_env"
			;;
		*) ln -s "$tool" "$m/pkgs/nix/bin/${tool##*/}" ;;
		esac
	done
	e2e_wrapper "$m/pkgs/nixos-rebuild/bin/nixos-rebuild" "$E2E_REPO/test/e2e/no-eval/nixos-rebuild" "$stand_in_env"
}

# e2e_machine_module NAME: the machine's own NixOS settings, next to the
# client module: NixOS's NIX_PATH, set as NixOS sets it (a list that becomes
# the session variable), and its Nix settings, which reach Nix through
# nix.envVars (here: no substituters, no network; on a prebuilt machine no
# builds either). Prints the file's path.
e2e_machine_module() {
	local m=$E2E_MACHINES/$1 nix_config=$NIX_CONFIG
	if [ -e "$m/no-eval" ]; then nix_config=$nix_config$'\nmax-jobs = 0'; fi
	printf '%s\n' "{ lib, ... }: {" \
		"  environment.sessionVariables.NIX_PATH = [ $(e2e_nixos_nix_path_list) ];" \
		"  nix.envVars.NIX_CONFIG = $(e2e_nix_string "$nix_config");" \
		"}" > "$m/machine.nix"
	printf '%s\n' "$m/machine.nix"
}

# A Nix string of the text $1.
e2e_nix_string() {
	local text=${1//\\/\\\\}
	text=${text//\"/\\\"}
	text=${text//\$\{/\\\$\{}
	text=${text//$'\n'/\\n}
	printf '"%s"\n' "$text"
}

# e2e_unit NAME ATTRIBUTE: JSON of ATTRIBUTE of machine NAME's configuration
# evaluated as NixOS would (e2e_eval_nixos): the client module as the
# machine receives it, and the machine's own module; its packages are its
# pkgs/. E.g. 'environments."bento-upgrade"'.
e2e_unit() {
	local m=$E2E_MACHINES/$1
	e2e_eval_nixos "[ $E2E_STATE/client/utils/bento.nix $(e2e_machine_module "$1") ]" "$2" "$m/pkgs"
}

# e2e_unit_environment NAME: the environment of machine NAME's bento-upgrade
# unit, NAME=VALUE words separated by NUL bytes (evaluated once per machine,
# kept in unit.env; removing that file makes the next run evaluate it again).
e2e_unit_environment() {
	local m=$E2E_MACHINES/$1 json
	if [ ! -s "$m/unit.env" ]; then
		json=$(e2e_unit "$1" 'environments."bento-upgrade"') || fail "cannot evaluate the bento-upgrade unit of $1"
		jq -j 'to_entries[] | "\(.key)=\(.value)\u0000"' <<< "$json" > "$m/unit.env"
	fi
	cat "$m/unit.env"
}

# e2e_unit_exec_start NAME: the words of bento-upgrade's ExecStart, one a line
# (checked: WorkingDirectory is /var/bento, where machine.sh starts).
e2e_unit_exec_start() {
	local m=$E2E_MACHINES/$1 json
	if [ ! -s "$m/unit.exec" ]; then
		json=$(e2e_unit "$1" 'config.systemd.services."bento-upgrade".serviceConfig') || fail "cannot evaluate the bento-upgrade unit of $1"
		assert_eq "$(jq -r .WorkingDirectory <<< "$json")" /var/bento "bento-upgrade's WorkingDirectory" || return 1
		jq -r .ExecStart <<< "$json" | tr ' ' '\n' > "$m/unit.exec"
	fi
	cat "$m/unit.exec"
}

# e2e_machine_tmpfs NAME SIZE: the machine's /var/bento on a tmpfs of SIZE
# (mounted on the host over its var-bento/, so it lasts across runs; what was
# there is copied in). cleanup.sh unmounts it.
e2e_machine_tmpfs() {
	local m=$E2E_MACHINES/$1
	mv "$m/var-bento" "$m/var-bento.before"
	mkdir -m 0700 "$m/var-bento"
	mount -t tmpfs -o "size=$2,mode=0700" "bento-e2e-$E2E_ID" "$m/var-bento"
	cp -a "$m/var-bento.before/." "$m/var-bento/"
	rm -rf "$m/var-bento.before"
}

# e2e_machine_without_var_bento NAME: the machine gets an empty /var of its
# own, without /var/bento (a new machine before its first bootstrap);
# var-bento then points to what the client creates there.
e2e_machine_without_var_bento() {
	local m=$E2E_MACHINES/$1
	rmdir "$m/var-bento"
	mkdir -m 0755 "$m/var"
	ln -s var/bento "$m/var-bento"
}

# The server side: what setup-debian.sh creates, then the sshd configuration.
e2e_setup_server() {
	local name
	getent group sftp_users > /dev/null || touch "$E2E_STATE/group-created"
	# setup-debian.sh makes the user who evaluates fleet code when it is missing: cleanup.sh removes it then.
	getent passwd bento-eval > /dev/null || touch "$E2E_STATE/evaluator-created"
	for name in $E2E_SYSTEMS; do
		if getent passwd "$name" > /dev/null; then fail "user $name exists already"; fi
		printf '%s\n' "$name" >> "$E2E_STATE/users"
	done
	BENTO_AUTHORIZED_KEYS_DIR=$E2E_SERVER/authorized_keys.d BENTO_SSHD_CONFIG_D=$E2E_SERVER/sshd_config.d BENTO_NO_RELOAD=1 \
		BENTO_PRUNE_LOGS=$E2E_SERVER/bento-prune-logs BENTO_SYSTEMD_DIR=$E2E_SERVER/systemd \
		sh "$E2E_FLEET/generated/server/setup-debian.sh" > "$E2E_STATE/setup-debian.out" 2>&1 ||
		fail "setup-debian.sh failed:" "$(cat "$E2E_STATE/setup-debian.out")"

	# No machine knows the server's host key yet: a new machine's root has
	# no known_hosts, and the client accepts the key of its first connection
	# (StrictHostKeyChecking=accept-new: templates/client/lib/connect.sh).
	ssh-keygen -q -t ed25519 -N '' -C "e2e-server" -f "$E2E_SERVER/ssh_host_ed25519_key"

	# The Match block as setup-debian.sh installed it, verbatim: with
	# BENTO_AUTHORIZED_KEYS_DIR, its AuthorizedKeysFile names the suite's keys.
	local snippet=$E2E_SERVER/sshd_config.d/bento.conf
	grep -qx "[[:space:]]*AuthorizedKeysFile $E2E_SERVER/authorized_keys.d/%u" "$snippet" ||
		fail "$snippet does not name BENTO_AUTHORIZED_KEYS_DIR in its AuthorizedKeysFile:" "$(grep AuthorizedKeysFile "$snippet")"
	{
		printf '%s\n' "# sshd of the e2e suite $E2E_ID" \
			"Port $E2E_PORT" \
			"ListenAddress 127.0.0.1" \
			"HostKey $E2E_SERVER/ssh_host_ed25519_key" \
			"PidFile $E2E_SERVER/sshd.pid" \
			"LogLevel VERBOSE" \
			"UsePAM no" \
			"PasswordAuthentication no" \
			"KbdInteractiveAuthentication no" \
			"StrictModes no" \
			"Subsystem sftp internal-sftp" \
			""
		cat "$snippet"
	} > "$E2E_SERVER/sshd_config"
	/usr/sbin/sshd -t -f "$E2E_SERVER/sshd_config" || fail "sshd -t refused $E2E_SERVER/sshd_config"
}

# e2e_known_host NAME: machine NAME's root knows the server's host key, as
# after a first connection made by hand (a person answering ssh's question);
# bento's client needs none (e2e_setup_server).
e2e_known_host() {
	printf '[127.0.0.1]:%s %s\n' "$E2E_PORT" "$(cut -d ' ' -f 1,2 "$E2E_SERVER/ssh_host_ed25519_key.pub")" >> "$E2E_MACHINES/$1/ssh/known_hosts"
}

e2e_listening() {
	[ -n "$(ss -Hltn "sport = :$E2E_PORT")" ]
}

e2e_start_sshd() {
	! e2e_listening || fail "port $E2E_PORT is taken: sshd is still running?"
	rm -f "$E2E_SERVER/sshd.pid"
	/usr/sbin/sshd -f "$E2E_SERVER/sshd_config" -E "$E2E_SERVER/sshd.log" < /dev/null > /dev/null 2>&1 3>&- ||
		fail "sshd did not start:" "$(tail -n 20 "$E2E_SERVER/sshd.log")"
	local i=0
	until e2e_listening && [ -s "$E2E_SERVER/sshd.pid" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || fail "sshd is not listening on port $E2E_PORT:" "$(tail -n 20 "$E2E_SERVER/sshd.log")"
		sleep 0.05
	done
}

e2e_stop_sshd() {
	sh "$E2E_LIB/stop-sshd.sh" "$E2E_SERVER" > /dev/null
}

# e2e_stop_sshd_hook NAME HOOK: the stand-in hook HOOK of machine NAME takes
# the server away (from inside the machine's namespace, which shares the
# host's processes and network).
e2e_stop_sshd_hook() {
	e2e_hook "$1" "$2" "sh '$E2E_LIB/stop-sshd.sh' '$E2E_SERVER'"
}

# e2e_deploy [NAME...]: `bento deploy` of these systems (default: all).
e2e_deploy() {
	NAME="$*" bento deploy
}

# e2e_deploy_or_fail [NAME...]: e2e_deploy for a suite's setup; on failure
# the suite stops with bento's output.
e2e_deploy_or_fail() {
	e2e_deploy "$@" > "$E2E_STATE/deploy.out" 2>&1 || fail "bento deploy failed:" "$(cat "$E2E_STATE/deploy.out")"
}

# e2e_first_update_or_fail NAME: the machine's first installation, its
# bootstrap.sh, for a suite's setup; on failure the suite stops with the
# client's output.
e2e_first_update_or_fail() {
	e2e_machine "$1" bootstrap > "$E2E_STATE/first-run.out" 2>&1 || fail "the first update failed:" "$(cat "$E2E_STATE/first-run.out")"
}

# ------------------------------------------------------------- the machines

# e2e_machine NAME [update|bootstrap|SCRIPT [ARG...]]: runs a client script
# on the machine as root, in its namespace (machine.sh), with exactly the
# environment its bento-upgrade unit gets (e2e_unit_environment) and nothing
# else, and prints its output. update runs what the unit runs, its ExecStart
# (/bin/sh /var/bento/update.sh), and fails when the machine has no
# /var/bento/update.sh (a machine gets it from its first bootstrap.sh, as a
# real one: the timer never runs anything else); bootstrap runs the fleet's
# generated bootstrap.sh (what a person runs by hand on a new machine), from
# / (a person's directory it cannot count on; machine.sh starts in
# /var/bento, the unit's WorkingDirectory); SCRIPT runs with /bin/sh.
e2e_machine() {
	local name=$1 what=${2:-update} m=$E2E_MACHINES/$1
	shift $(($# < 2 ? $# : 2))
	local -a command environment chdir=()
	case $what in
	update)
		if [ ! -f "$m/var-bento/update.sh" ]; then
			fail "$name has no /var/bento/update.sh, which its bento-upgrade unit runs: a machine gets it from its first bootstrap.sh (e2e_machine NAME bootstrap)"
			return 1
		fi
		mapfile -t command < <(e2e_unit_exec_start "$name")
		[ "${#command[@]}" -gt 0 ] || return 1
		;;
	bootstrap)
		command=(/bin/sh "$E2E_FLEET/generated/systems/$name/bootstrap.sh")
		chdir=(-C /)
		;;
	*) command=(/bin/sh "$what") ;;
	esac
	mapfile -d '' environment < <(e2e_unit_environment "$name")
	[ "${#environment[@]}" -gt 0 ] || return 1
	# E2E_TIME_TO=FILE (benchmarks): GNU time writes the run's seconds and peak memory there.
	local measure=()
	if [ -n "${E2E_TIME_TO:-}" ]; then measure=(/usr/bin/time -f '%e %M' -o "$E2E_TIME_TO"); fi
	# machine.sh sets up the namespace with this machine's tools; what it
	# runs there sees the unit's environment and nothing else.
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${measure[@]}" "$E2E_LIB/machine.sh" "$m" \
		/usr/bin/env -i "${chdir[@]}" "${environment[@]}" "${command[@]}" "$@" 3>&-
}

# The processes still running from the machines of this suite (in one of
# their mount namespaces: lib/processes.sh), e.g. an ssh connection master
# left behind.
e2e_leftover_processes() {
	sh "$E2E_LIB/processes.sh" "$E2E_ID"
}

# e2e_hook NAME HOOK SCRIPT-TEXT: an executable hook of the stand-ins.
# A hook is the lab acting on the world (the server goes away, a disk
# fills): it runs with this machine's tools, not the simulated machine's.
e2e_hook() {
	printf '#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\n%s\n' "$3" > "$E2E_MACHINES/$1/hooks/$2"
	chmod +x "$E2E_MACHINES/$1/hooks/$2"
}

e2e_clear_hooks() {
	rm -f "$E2E_MACHINES/$1"/hooks/*
}

# What the stand-ins recorded on machine NAME since the last e2e_clear_record.
e2e_record() {
	cat "$E2E_MACHINES/$1/record"
}

e2e_clear_record() {
	: > "$E2E_MACHINES/$1/record"
}

# The store path the machine's system profile points to (empty: none).
e2e_profile() {
	readlink -f "$E2E_MACHINES/$1/profiles/system" || true
}

# The profile generation link (system-N-link).
e2e_generation() {
	readlink "$E2E_MACHINES/$1/profiles/system" || true
}

e2e_current_system() {
	readlink "$E2E_MACHINES/$1/run/current-system" || true
}

# The calls of switch-to-configuration on machine NAME (e2e_switch_script),
# one a line: "switch-to-configuration <system> <action> NIXOS_INSTALL_BOOTLOADER=…".
e2e_switch_record() {
	cat "$E2E_MACHINES/$1/run/switch-to-configuration.record" 2> /dev/null || true
}

# The boot menu of machine NAME as its boot loader was last installed: one
# line per entry, "<generation> <system>", then "default <generation>".
e2e_boot_entries() {
	local entries=$E2E_MACHINES/$1/boot/loader/entries entry
	for entry in "$entries"/nixos-generation-*.conf; do
		[ -f "$entry" ] || continue
		printf '%s %s\n' "$(sed -n 's/^version Generation //p' "$entry")" "$(sed -n 's|^linux \(.*\)/kernel$|\1|p' "$entry")"
	done | sort -n
	sed -n 's/^default nixos-generation-\(.*\)\.conf$/default \1/p' "$E2E_MACHINES/$1/boot/loader/loader.conf" 2> /dev/null
}

# The store path basename states.txt expects for NAME.
e2e_expected() {
	sed -n "s/^$1=//p" "$E2E_CHROOT/states.txt"
}

# The names in NAME's logs/ on the server, sorted: its logs, and anything
# else found there (an upload's temporary, ...) but the heartbeat, which
# every session rewrites and which is no log (docs/protocol.md §5a;
# e2e_heartbeat).
e2e_logs() {
	find "$E2E_CHROOT/$1/logs" -mindepth 1 -maxdepth 1 ! -name heartbeat -printf '%f\n' | sort
}

# NAME's newest log on the server (by arrival), optionally among those
# whose name ends with SUFFIX; never the heartbeat.
e2e_newest_log() {
	find "$E2E_CHROOT/$1/logs" -mindepth 1 -maxdepth 1 ! -name heartbeat -name "*${2:-}" -printf '%T@ %f\n' | sort -n | tail -n 1 | cut -d ' ' -f 2-
}

# The protocol version the client speaks (src/protocol/log-header.ts): its
# logs' header and its heartbeat say it.
e2e_protocol_version() {
	node --input-type=module -e "
		import { LOG_PROTOCOL_VERSION } from '$E2E_REPO/dist/protocol/log-header.js';
		console.log(LOG_PROTOCOL_VERSION);
	"
}

# NAME's heartbeat on the server (docs/protocol.md §5a), its path.
e2e_heartbeat() {
	printf '%s\n' "$E2E_CHROOT/$1/logs/heartbeat"
}

e2e_log_count() {
	e2e_logs "$1" | grep -c . || true
}

# The content of NAME's newest log (by arrival) whose name ends with SUFFIX
# (e.g. _success.log.gz).
e2e_log_text() {
	local log
	log=$(e2e_newest_log "$1" "$2")
	[ -n "$log" ] || fail "no log *$2 for $1"
	gzip -dc "$E2E_CHROOT/$1/logs/$log"
}

# "Accepted publickey" lines in sshd's log: one per SSH session.
e2e_accepted() {
	grep -c 'Accepted publickey' "$E2E_SERVER/sshd.log" || true
}

# NAME's state in `bento status --json` (its warnings left out).
e2e_status_state() {
	bento status --json 2> /dev/null | jq -r --arg name "$1" '.[] | select(.name == $name) | .state'
}

# A listing of what the machine keeps (its configuration in /var/bento, the
# remembered state and queued logs, its profile and /run), with contents, to
# prove a run changed nothing; the scratch files of .bento/ are left out.
e2e_machine_snapshot() {
	local m=$E2E_MACHINES/$1
	(
		cd "$m" || exit 1
		find var-bento profiles run -path var-bento/.bento -prune -o -printf '%p %y %m %l\n' | sort
		find var-bento/.bento/state var-bento/.bento/pending -printf '%p %y %m %l\n' 2> /dev/null | sort
		find var-bento -path var-bento/.bento -prune -o -type f -exec sha256sum {} + | sort
		find var-bento/.bento/state var-bento/.bento/pending -type f -exec sha256sum {} + 2> /dev/null | sort
	)
}

# The configuration installed on machine NAME (its /var/bento but bento's
# state in .bento/: the published files with their contents, update.sh
# among them, and whether a .git tree is there; not what is in it, which
# git rewrites at will).
e2e_installed_configuration() {
	(
		cd "$E2E_MACHINES/$1/var-bento" || exit 1
		find . \( -path ./.bento -o -path ./.git \) -prune -o -printf '%p %y %m %l\n' | sort
		find . \( -path ./.bento -o -path ./.git \) -prune -o -type f -exec sha256sum {} + | sort
		if [ -d .git ]; then echo "a git tree"; fi
	)
}

# e2e_log_name_regex NAME [RESULT]: a log name as docs/protocol.md §5 defines it.
e2e_log_name_regex() {
	printf '^[0-9]{8}-[0-9]{4}_[0-9a-z]{32}-nixos-system-%s-[^_/]+_(%s)\\.log\\.gz$' "$1" "${2:-success|failure|rollback|autoupdate}"
}
