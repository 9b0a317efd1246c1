#!/usr/bin/env bats
# The client run exactly as its systemd unit runs it (README, "On the machines"): the machine's
# bento-upgrade.service is evaluated from utils/bento.nix as NixOS would (the
# real nixpkgs lib, test/fixtures/nixos), and its ExecStart runs with nothing
# but the environment the unit gives: its Environment= (NIX_PATH from the
# machine's session variables, HOME, Nix's variables) and a PATH made of the
# unit's `path` plus systemd's defaults. The packages on that PATH hold the
# Debian tools of the same name; nixos-rebuild is the e2e stand-in. A flake
# and a non-flake machine must both update.

load lib/e2e

setup_file() {
	e2e_setup_suite a b:nonflake
	export A B
	A=$(sys a)
	B=$(sys b)
	e2e_deploy_or_fail

	# The client's files as a machine receives them.
	export ROOT=$E2E_BASE/client
	mkdir -p "$ROOT/utils"
	cp "$E2E_REPO/utils/bento.nix" "$ROOT/utils/bento.nix"
	cp "$E2E_FLEET/generated/client/bento-units.nix" "$ROOT/bento-units.nix"
	make_packages
	for name in "$A" "$B"; do
		make_machine_packages "$name"
		# NixOS's NIX_PATH names the root's channel "nixos".
		mkdir -p "$E2E_MACHINES/$name/profiles/per-user/root/channels"
		ln -s "$E2E_REPO/example/offline-nixpkgs" "$E2E_MACHINES/$name/profiles/per-user/root/channels/nixos"
		# As a first bootstrap.sh leaves it: the service runs /var/bento/update.sh.
		cp "$E2E_FLEET/generated/systems/$name/update.sh" "$E2E_MACHINES/$name/var-bento/update.sh"
	done
}

teardown_file() {
	e2e_teardown_suite
}

# Stand-ins for the packages the units name: PKGS/<attribute>/bin (and sbin)
# link to the binaries of the Debian package that provides the same tools.
make_packages() {
	local attribute debian file dir
	for attribute in coreutils:coreutils findutils:findutils gnugrep:grep gnused:sed openssh:openssh-client \
		git:git gzip:gzip diffutils:diffutils util-linux:util-linux nix:nix-bin jq:jq; do
		debian=${attribute#*:}
		attribute=${attribute%%:*}
		mkdir -p "$E2E_BASE/pkgs/$attribute/bin" "$E2E_BASE/pkgs/$attribute/sbin"
		while read -r file; do
			case $file in */sbin/*) dir=sbin ;; *) dir=bin ;; esac
			[ -x "$file" ] && ln -sf "$file" "$E2E_BASE/pkgs/$attribute/$dir/$(basename "$file")"
		done < <(dpkg -L "$debian" | grep -E '^(/usr)?/s?bin/[^/]+$')
	done
}

# make_machine_packages NAME: the machine's package set: the shared ones,
# plus systemd (systemctl) and nixos-rebuild, stand-ins that record into the
# machine's record. Like nixpkgs' nixos-rebuild (pkgs/by-name/ni/nixos-rebuild/package.nix),
# the stand-in puts coreutils, sed, grep, jq and util-linux first on its
# PATH and takes nix from its caller's.
make_machine_packages() {
	local m=$E2E_MACHINES/$1 pkgs=$E2E_BASE/pkgs attribute
	mkdir -p "$m/pkgs/systemd/bin" "$m/pkgs/nixos-rebuild/bin"
	for attribute in "$pkgs"/*; do
		ln -s "$attribute" "$m/pkgs/$(basename "$attribute")"
	done
	printf '%s\n' '#!/bin/sh' "export E2E_RECORD='$m/record' E2E_HOOKS='$m/hooks'" \
		"exec '$E2E_STANDINS/systemctl' \"\$@\"" > "$m/pkgs/systemd/bin/systemctl"
	printf '%s\n' '#!/bin/sh' "export E2E_RECORD='$m/record' E2E_HOOKS='$m/hooks'" \
		"export PATH=\"$pkgs/coreutils/bin:$pkgs/gnused/bin:$pkgs/gnugrep/bin:$pkgs/jq/bin:$pkgs/util-linux/bin:\$PATH\"" \
		"exec '$E2E_STANDINS/nixos-rebuild' \"\$@\"" > "$m/pkgs/nixos-rebuild/bin/nixos-rebuild"
	chmod +x "$m/pkgs/systemd/bin/systemctl" "$m/pkgs/nixos-rebuild/bin/nixos-rebuild"
}

# The machine's configuration: NixOS's NIX_PATH, set as NixOS sets it (a list
# that becomes the session variable), and its Nix settings, which reach Nix
# through nix.envVars (here: no substituters, no network).
machine_module() {
	printf '%s\n' "{ lib, ... }: {" \
		"  environment.sessionVariables.NIX_PATH = [ $(e2e_nixos_nix_path_list) ];" \
		"  nix.envVars.NIX_CONFIG = \"substituters =\\nsandbox = false\";" \
		"}" > "$E2E_BASE/machine.nix"
	printf '%s\n' "$E2E_BASE/machine.nix"
}

# unit NAME ATTRIBUTE: JSON of bento-upgrade's ATTRIBUTE on machine NAME.
unit() {
	e2e_eval_nixos "[ $ROOT/utils/bento.nix $(machine_module) ]" "$2" "$E2E_MACHINES/$1/pkgs"
}

# run_as_unit NAME [VARIABLE...]: runs the unit's ExecStart on machine NAME
# with only the unit's environment (without the VARIABLEs given), in its
# WorkingDirectory. Prints its output.
run_as_unit() {
	local name=$1 m=$E2E_MACHINES/$1 environment service variable
	shift
	environment=$(unit "$name" 'environments."bento-upgrade"') || return 1
	service=$(unit "$name" 'config.systemd.services."bento-upgrade"') || return 1
	for variable in "$@"; do
		environment=$(jq --arg v "$variable" 'del(.[$v])' <<< "$environment")
	done
	local -a assignments exec_start
	mapfile -d '' assignments < <(jq -j 'to_entries[] | "\(.key)=\(.value)\u0000"' <<< "$environment")
	read -r -a exec_start <<< "$(jq -r .serviceConfig.ExecStart <<< "$service")"
	assert_eq "$(jq -r .serviceConfig.WorkingDirectory <<< "$service")" /var/bento "WorkingDirectory" || return 1
	# machine.sh sets up the namespace with the host's tools and starts in /var/bento;
	# what it runs there sees the unit's environment and nothing else.
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$E2E_LIB/machine.sh" "$m" \
		/usr/bin/env -i "${assignments[@]}" "${exec_start[@]}" 3>&-
}

@test "the unit's environment: NixOS's NIX_PATH, HOME, Nix's settings, and its packages on PATH" {
	run -0 unit "$A" 'environments."bento-upgrade"'
	assert_eq "$(jq -c 'keys' <<< "$output")" '["HOME","NIX_CONFIG","NIX_PATH","PATH"]' "variables"
	assert_eq "$(jq -r .NIX_PATH <<< "$output")" "$(e2e_nixos_nix_path)" "NIX_PATH"
	assert_contains "$(jq -r .PATH <<< "$output")" "$E2E_MACHINES/$A/pkgs/openssh/bin:"
}

@test "a flake machine updates when run as its unit" {
	expected=$(e2e_expected "$A")
	run -0 run_as_unit "$A"
	assert_contains "$output" "switching to $expected"
	assert_eq "$(e2e_profile "$A")" "/nix/store/$expected" "system profile"
	assert_contains "$(e2e_record "$A")" "nixos-rebuild switch --flake /var/bento#$A"
	assert_match "$(e2e_logs "$A")" "$(e2e_log_name_regex "$A" success)"
	assert_eq "$(e2e_status_state "$A")" up-to-date "bento status"
}

@test "a machine without flakes updates when run as its unit: it builds <nixpkgs/nixos> from NixOS's NIX_PATH" {
	run -0 run_as_unit "$B"
	assert_contains "$output" "switching to"
	assert_contains "$(e2e_record "$B")" "nixos-rebuild switch --no-flake -I nixos-config=/var/bento/configuration.nix"
	profile=$(e2e_profile "$B")
	assert_match "$profile" "^/nix/store/[0-9a-z]{32}-nixos-system-$B-24\\.05\$"
	assert_match "$(e2e_logs "$B")" "$(e2e_log_name_regex "$B" success)"
	assert_eq "$(e2e_status_state "$B")" up-to-date "bento status"
}

@test "without the unit's NIX_PATH, the machine without flakes could not build (the check above can fail)" {
	e2e_new_revision "$B"
	e2e_deploy "$B"
	profile=$(e2e_profile "$B")
	run -1 run_as_unit "$B" NIX_PATH
	assert_contains "$output" "the build failed"
	assert_contains "$output" "not found in the Nix search path"
	assert_eq "$(e2e_profile "$B")" "$profile" "system profile"
}
