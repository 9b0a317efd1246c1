#!/usr/bin/env bats
# The client's Nix side (docs/machines.md): utils/bento.nix and the generated Nix
# files parse, and the units of the client module (bento-module.nix) with the
# fleet's settings (bento-units.nix), evaluated as NixOS
# would (the real nixpkgs lib.evalModules, with the NixOS options bento sets
# declared as nixpkgs declares them: test/fixtures/nixos/), have the settings
# docs/machines.md and config.sh ask for. No server needed.

load lib/e2e

setup_file() {
	# A fleet whose config.sh sets every unit setting away from its default.
	export FLEET=$BATS_FILE_TMPDIR/fleet
	mkdir -p "$FLEET/hosts/probe" "$FLEET/keys"
	cat > "$FLEET/config.sh" <<-'EOF2'
		CHROOT_DIR=/srv/bento-e2e-unused
		REMOTE_IP=127.0.0.1
		UPDATE_CALENDAR="*:0/5"
		UPDATE_RANDOM_DELAY=7min
		REBOOT_CALENDAR="Sun 03:00"
		LISTEN_PORT=4242
	EOF2
	printf '{ ... }: { }\n' > "$FLEET/hosts/probe/configuration.nix"
	node "$E2E_REPO/dist/main.js" --dir "$FLEET" generate > "$BATS_FILE_TMPDIR/generate.out" 2>&1 ||
		fail "bento generate failed:" "$(cat "$BATS_FILE_TMPDIR/generate.out")"
	# The client's files as a machine receives them: bento-module.nix and bento-units.nix next to utils/.
	export ROOT=$BATS_FILE_TMPDIR/config
	mkdir -p "$ROOT/utils"
	cp "$E2E_REPO/utils/bento.nix" "$ROOT/utils/bento.nix"
	cp "$FLEET/generated/client/bento-units.nix" "$FLEET/generated/client/bento-module.nix" "$ROOT/"
}

# evaluate ATTRIBUTE [SETTINGS]: JSON of an attribute of the evaluated
# machine (test/fixtures/nixos/eval.nix) that imports utils/bento.nix, with
# NixOS's NIX_PATH and SETTINGS (Nix attributes) in its configuration.
evaluate() {
	printf '%s\n' "{ lib, ... }: {" \
		"  # As nixos/modules/config/nix-channel.nix sets it (the default nix.nixPath)." \
		"  environment.sessionVariables.NIX_PATH = [ $(e2e_nixos_nix_path_list) ];" \
		"  ${2:-}" \
		"}" > "$BATS_TEST_TMPDIR/machine.nix"
	e2e_eval_nixos "[ $ROOT/utils/bento.nix $BATS_TEST_TMPDIR/machine.nix ]" "$1"
}

ALL_ON='services.bento = { updateCalendar = "hourly"; randomizedDelaySec = "3min"; reboot = { enable = true; calendar = "Sat 02:00"; }; listen = { port = 8080; openFirewall = true; allowedAddresses = [ "192.168.1.0/24" "localhost" ]; }; };'
ALL_OFF='services.bento = { reboot.enable = false; listen = { enable = false; openFirewall = true; }; };'

@test "utils/bento.nix and every generated Nix file parse" {
	for file in "$E2E_REPO/utils/bento.nix" "$E2E_REPO"/nix/modules/*.nix \
		"$E2E_REPO"/generated/client/*.nix "$E2E_REPO"/generated/server/*.nix \
		"$FLEET"/generated/client/*.nix "$FLEET"/generated/server/*.nix; do
		nix-instantiate --parse "$file" > /dev/null || fail "$file does not parse"
	done
}

@test "bento-units.nix sets config.sh's settings as the values of the options" {
	run -0 evaluate config.services.bento
	assert_eq "$(jq -c . <<< "$output")" \
		'{"enable":true,"fixedRandomDelay":true,"healthCheck":{"command":null,"gracePeriod":120,"timeout":30},"listen":{"allowedAddresses":["127.0.0.1"],"allowedHosts":[],"enable":true,"openFirewall":false,"port":4242},"randomizedDelaySec":"7min","reboot":{"calendar":"Sun 03:00","enable":false},"serverPublicKey":null,"updateCalendar":"*:0/5"}' \
		"option values of utils/bento.nix"
}

@test "bento-upgrade: oneshot /var/bento/update.sh on a timer, not restarted by a switch" {
	run -0 evaluate config.systemd "$ALL_ON"
	units=$output
	service=$(jq -c '.services."bento-upgrade"' <<< "$units")
	assert_eq "$(jq -r .restartIfChanged <<< "$service")" false "restartIfChanged"
	assert_eq "$(jq -r .unitConfig.\"X-StopOnRemoval\" <<< "$service")" false "X-StopOnRemoval"
	assert_eq "$(jq -r .serviceConfig.Type <<< "$service")" oneshot "Type"
	assert_eq "$(jq -r .serviceConfig.WorkingDirectory <<< "$service")" /var/bento "WorkingDirectory"
	assert_eq "$(jq -r .serviceConfig.ExecStart <<< "$service")" "/bin/sh /var/bento/update.sh" "ExecStart"
	assert_eq "$(jq -c .after <<< "$service")" '["network-online.target"]' "after"
	timer=$(jq -c '.timers."bento-upgrade"' <<< "$units")
	assert_eq "$(jq -r .timerConfig.OnCalendar <<< "$timer")" hourly "OnCalendar"
	assert_eq "$(jq -r .timerConfig.RandomizedDelaySec <<< "$timer")" 3min "RandomizedDelaySec"
	# Each machine keeps its own offset (systemd 247+), as nixpkgs' autoUpgrade.fixedRandomDelay.
	assert_eq "$(jq -r .timerConfig.FixedRandomDelay <<< "$timer")" true "FixedRandomDelay"
	run -0 evaluate 'config.systemd.timers."bento-upgrade".timerConfig' 'services.bento.fixedRandomDelay = false;'
	assert_eq "$(jq -r .FixedRandomDelay <<< "$output")" false "FixedRandomDelay when turned off"
	assert_eq "$(jq -r .timerConfig.Persistent <<< "$timer")" true "Persistent"
	assert_eq "$(jq -r '.wantedBy[]' <<< "$timer")" timers.target "wantedBy"
	assert_eq "$(jq -r '.tmpfiles.rules[]' <<< "$units")" "d /var/bento 0700 root root -" "tmpfiles"
}

@test "bento-upgrade: its tools on PATH, each once; systemd's defaults are not repeated" {
	run -0 evaluate 'config.systemd.services."bento-upgrade".path'
	# After the unit's own entries come the defaults every service gets
	# (nixos/lib/systemd-lib.nix); the unit must not list those again.
	assert_eq "$(jq -r '.[]' <<< "$output" | sed 's|^/pkgs/||' | tr '\n' ' ')" \
		"nixos-rebuild nix openssh git gzip diffutils util-linux coreutils findutils gnugrep gnused systemd " "path"
}

@test "bento-upgrade: the environment of nixpkgs' upgrade service (NIX_PATH, HOME, Nix's and the proxy's variables)" {
	run -0 evaluate 'environments."bento-upgrade"' \
		'nix.envVars.NIX_REMOTE = "daemon"; networking.proxy.envVars = { https_proxy = "http://proxy:3128"; no_proxy = "localhost"; };'
	environment=$output
	# NixOS joins the list of its session variable into one string.
	assert_eq "$(jq -r .NIX_PATH <<< "$environment")" "$(e2e_nixos_nix_path)" "NIX_PATH"
	assert_eq "$(jq -r .HOME <<< "$environment")" /root "HOME"
	assert_eq "$(jq -r .NIX_REMOTE <<< "$environment")" daemon "nix.envVars"
	assert_eq "$(jq -r .https_proxy <<< "$environment")" http://proxy:3128 "networking.proxy.envVars"
	assert_eq "$(jq -r .no_proxy <<< "$environment")" localhost "networking.proxy.envVars"
	assert_match "$(jq -r .PATH <<< "$environment")" '^/pkgs/nixos-rebuild/bin:/pkgs/nix/bin:/pkgs/openssh/bin:'
	# A machine with no NIX_PATH of its own (nix.enable = false): none is set.
	printf '%s\n' '{ }' > "$BATS_TEST_TMPDIR/bare.nix"
	run -0 e2e_eval_nixos "[ $ROOT/utils/bento.nix $BATS_TEST_TMPDIR/bare.nix ]" 'environments."bento-upgrade"'
	assert_eq "$(jq -c 'keys' <<< "$output")" '["HOME","PATH"]' "variables without a NIX_PATH"
}

@test "bento-reboot and the listen-update socket follow their options" {
	run -0 evaluate config "$ALL_ON"
	config=$output
	assert_eq "$(jq -r '.systemd.timers."bento-reboot".timerConfig.OnCalendar' <<< "$config")" "Sat 02:00" "bento-reboot timer"
	# The unit runs the client's own reboot check (reboot_when_due: systemctl kexec || systemctl reboot).
	assert_contains "$(jq -r '.systemd.services."bento-reboot".script' <<< "$config")" "exec /bin/sh /var/bento/update.sh reboot"
	socket=$(jq -c '.systemd.sockets."listen-update"' <<< "$config")
	assert_eq "$(jq -c .listenStreams <<< "$socket")" '["8080"]' "socket port"
	assert_eq "$(jq -c .wantedBy <<< "$socket")" '["sockets.target"]' "socket wantedBy"
	assert_eq "$(jq -c .socketConfig <<< "$socket")" \
		'{"Accept":true,"IPAddressAllow":["192.168.1.0/24","localhost"],"IPAddressDeny":"any","MaxConnectionsPerSource":8,"TriggerLimitIntervalSec":0}' "socketConfig"
	listen=$(jq -c '.systemd.services."listen-update@"' <<< "$config")
	assert_eq "$(jq -r .restartIfChanged <<< "$listen")" false "listen-update@ restartIfChanged"
	assert_eq "$(jq -r .serviceConfig.StandardInput <<< "$listen")" socket "StandardInput"
	assert_contains "$(jq -r .script <<< "$listen")" "systemctl start bento-upgrade.service"
	assert_eq "$(jq -c .networking.firewall.allowedTCPPorts <<< "$config")" '[8080]' "firewall"

	# By default only the server of REMOTE_IP (127.0.0.1) may connect.
	run -0 evaluate 'config.systemd.sockets."listen-update".socketConfig'
	assert_eq "$(jq -c . <<< "$output")" '{"Accept":true,"IPAddressAllow":["127.0.0.1"],"IPAddressDeny":"any","MaxConnectionsPerSource":8,"TriggerLimitIntervalSec":0}' "socketConfig by default"

	run -0 evaluate config "$ALL_OFF"
	config=$output
	assert_eq "$(jq -c '.systemd.services | keys' <<< "$config")" '["bento-upgrade"]' "services"
	assert_eq "$(jq -c '.systemd.timers | keys' <<< "$config")" '["bento-upgrade"]' "timers"
	assert_eq "$(jq -c '.systemd.sockets' <<< "$config")" '{}' "sockets"
	assert_eq "$(jq -c .networking.firewall.allowedTCPPorts <<< "$config")" '[]' "firewall closed"
}

@test "the server's signing key (prebuilt systems) is added to the machine's trusted-public-keys; without one, nothing is" {
	run -0 evaluate config.nix.settings.trusted-public-keys
	assert_eq "$(jq -c . <<< "$output")" '["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="]' "trusted-public-keys without a server key"
	key='bento-server-20250101:uC5kEkaoR8yRCNA45UuQCYvWqWgMjrRIPRoRE1Cykiw='
	# As bento-units.nix carries it when the fleet has a prebuilt system.
	sed "s|serverPublicKey = lib.mkDefault null;|serverPublicKey = lib.mkDefault \"$key\";|" "$ROOT/bento-units.nix" > "$BATS_TEST_TMPDIR/bento-units.nix"
	mkdir -p "$BATS_TEST_TMPDIR/keyed/utils"
	cp "$ROOT/utils/bento.nix" "$BATS_TEST_TMPDIR/keyed/utils/"
	cp "$ROOT/bento-module.nix" "$BATS_TEST_TMPDIR/keyed/"
	cp "$BATS_TEST_TMPDIR/bento-units.nix" "$BATS_TEST_TMPDIR/keyed/bento-units.nix"
	printf '%s\n' '{ }' > "$BATS_TEST_TMPDIR/bare.nix"
	run -0 e2e_eval_nixos "[ $BATS_TEST_TMPDIR/keyed/utils/bento.nix $BATS_TEST_TMPDIR/bare.nix ]" config.nix.settings.trusted-public-keys
	assert_eq "$(jq -c . <<< "$output")" "[\"cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=\",\"$key\"]" "trusted-public-keys with the server's key"
	# A machine may turn it off.
	printf '%s\n' '{ services.bento.serverPublicKey = null; }' > "$BATS_TEST_TMPDIR/off.nix"
	run -0 e2e_eval_nixos "[ $BATS_TEST_TMPDIR/keyed/utils/bento.nix $BATS_TEST_TMPDIR/off.nix ]" config.nix.settings.trusted-public-keys
	assert_eq "$(jq -c 'length' <<< "$output")" 1 "trusted-public-keys with serverPublicKey = null"
}

@test "utils/bento.nix applies nothing when disabled" {
	run -0 evaluate config.systemd 'services.bento.enable = false;'
	assert_eq "$(jq -c '[.services, .timers, .sockets, .tmpfiles.rules]' <<< "$output")" '[{},{},{},[]]' "units"
}

@test "option values of the wrong type are refused, as NixOS refuses them" {
	run ! evaluate config.systemd 'services.bento.listen.port = 70000;'
	assert_contains "$output" "services.bento.listen.port"
	run ! evaluate config.systemd 'services.bento.listen.allowedAddresses = "10.0.0.0/8";'
	assert_contains "$output" "services.bento.listen.allowedAddresses"
}

@test "utils/bento.nix without bento-units.nix or bento-module.nix next to utils/ stops with a clear message" {
	for file in bento-units.nix bento-module.nix; do
		rm "$ROOT/$file"
		run ! evaluate config.services.bento
		cp "$FLEET/generated/client/$file" "$ROOT/$file"
		assert_contains "$output" "../$file was not found next to utils/"
	done
}
