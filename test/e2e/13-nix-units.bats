#!/usr/bin/env bats
# The client's Nix side (SPEC §9): utils/bento.nix and the generated Nix
# files parse, and the units that bento-units.nix declares (evaluated with
# stub cfg/config/lib/pkgs, as utils/bento.nix calls them) have the settings
# SPEC §9 and config.sh ask for. No server needed.

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
	# The client's files as a machine receives them: bento-units.nix next to utils/.
	export ROOT=$BATS_FILE_TMPDIR/config
	mkdir -p "$ROOT/utils"
	cp "$E2E_REPO/utils/bento.nix" "$ROOT/utils/bento.nix"
	cp "$FLEET/generated/client/bento-units.nix" "$ROOT/bento-units.nix"
}

# evaluate ATTRIBUTE [CFG]: JSON of an attribute of lib/eval-client-module.nix.
evaluate() {
	local cfg=${2:-'{ }'}
	nix-instantiate --eval --strict --json "$E2E_LIB/eval-client-module.nix" \
		--arg configRoot "$ROOT" --arg cfg "$cfg" -A "$1"
}

ALL_ON='{ enable = true; updateCalendar = "hourly"; randomizedDelaySec = "3min"; reboot = { enable = true; calendar = "Sat 02:00"; }; listen = { enable = true; port = 8080; openFirewall = true; }; }'
ALL_OFF='{ enable = true; updateCalendar = "hourly"; randomizedDelaySec = "0"; reboot = { enable = false; calendar = "04:00"; }; listen = { enable = false; port = 51337; openFirewall = true; }; }'

@test "utils/bento.nix and every generated Nix file parse" {
	for file in "$E2E_REPO/utils/bento.nix" \
		"$E2E_REPO/generated/client/bento-units.nix" "$E2E_REPO/generated/server/sftp-server.nix" \
		"$FLEET/generated/client/bento-units.nix" "$FLEET/generated/server/sftp-server.nix"; do
		nix-instantiate --parse "$file" > /dev/null || fail "$file does not parse"
	done
}

@test "bento-units.nix carries config.sh's settings as the defaults of the options" {
	run -0 evaluate defaults
	assert_eq "$(jq -c . <<< "$output")" '{"listenPort":4242,"randomizedDelaySec":"7min","rebootCalendar":"Sun 03:00","updateCalendar":"*:0/5"}' "defaults"
	run -0 evaluate optionDefaults
	assert_eq "$(jq -c . <<< "$output")" \
		'{"enable":true,"listen":{"enable":true,"openFirewall":false,"port":4242},"randomizedDelaySec":"7min","reboot":{"calendar":"Sun 03:00","enable":false},"updateCalendar":"*:0/5"}' \
		"option defaults of utils/bento.nix"
}

@test "bento-upgrade: oneshot /var/bento/update.sh on a timer, not restarted by a switch, with its tools on PATH" {
	run -0 evaluate units "$ALL_ON"
	units=$output
	service=$(jq -c '.systemd.services."bento-upgrade"' <<< "$units")
	assert_eq "$(jq -r .restartIfChanged <<< "$service")" false "restartIfChanged"
	assert_eq "$(jq -r .unitConfig.\"X-StopOnRemoval\" <<< "$service")" false "X-StopOnRemoval"
	assert_eq "$(jq -r .serviceConfig.Type <<< "$service")" oneshot "Type"
	assert_eq "$(jq -r .serviceConfig.WorkingDirectory <<< "$service")" /var/bento "WorkingDirectory"
	assert_contains "$(jq -r .serviceConfig.ExecStart <<< "$service")" /var/bento/update.sh
	path=$(jq -r '.path[]' <<< "$service")
	for tool in '<nixos-rebuild>' '<nix>' '<pkgs.openssh>' '<pkgs.git>' '<pkgs.gzip>' '<pkgs.util-linux>'; do
		assert_contains "$path" "$tool"
	done
	timer=$(jq -c '.systemd.timers."bento-upgrade"' <<< "$units")
	assert_eq "$(jq -r .timerConfig.OnCalendar <<< "$timer")" hourly "OnCalendar"
	assert_eq "$(jq -r .timerConfig.RandomizedDelaySec <<< "$timer")" 3min "RandomizedDelaySec"
	assert_eq "$(jq -r '.wantedBy[]' <<< "$timer")" timers.target "wantedBy"
	assert_eq "$(jq -r '.systemd.tmpfiles.rules[]' <<< "$units")" "d /var/bento 0700 root root -" "tmpfiles"
}

@test "bento-reboot and the listen-update socket follow their options" {
	run -0 evaluate units "$ALL_ON"
	units=$output
	assert_eq "$(jq -r '.systemd.timers."bento-reboot" | [.condition, .content.timerConfig.OnCalendar] | @tsv' <<< "$units")" $'true\tSat 02:00' "bento-reboot timer"
	assert_contains "$(jq -r '.systemd.services."bento-reboot".content.script' <<< "$units")" "systemctl kexec || systemctl reboot"
	socket=$(jq -c '.systemd.sockets."listen-update"' <<< "$units")
	assert_eq "$(jq -r .condition <<< "$socket")" true "socket enabled"
	assert_eq "$(jq -c .content.listenStreams <<< "$socket")" '["8080"]' "socket port"
	assert_eq "$(jq -r .content.socketConfig.Accept <<< "$socket")" true "Accept"
	assert_contains "$(jq -r '.systemd.services."listen-update@".content.script' <<< "$units")" "systemctl start --no-block bento-upgrade.service"
	assert_eq "$(jq -c '.networking.firewall.allowedTCPPorts | [.condition, .content]' <<< "$units")" '[true,[8080]]' "firewall"

	run -0 evaluate units "$ALL_OFF"
	units=$output
	assert_eq "$(jq -r '.systemd.services."bento-reboot".condition' <<< "$units")" false "bento-reboot disabled"
	assert_eq "$(jq -r '.systemd.sockets."listen-update".condition' <<< "$units")" false "socket disabled"
	assert_eq "$(jq -r '.networking.firewall.allowedTCPPorts.condition' <<< "$units")" false "firewall closed"
}

@test "utils/bento.nix applies the units when enabled, with the machine's own settings" {
	run -0 evaluate moduleConfig "$ALL_ON"
	assert_eq "$(jq -r .condition <<< "$output")" true "mkIf cfg.enable"
	assert_eq "$(jq -r '.content.systemd.timers."bento-upgrade".timerConfig.OnCalendar' <<< "$output")" hourly "OnCalendar"
	assert_eq "$(jq -r '.content.systemd.services."bento-upgrade".restartIfChanged' <<< "$output")" false "restartIfChanged"
}

@test "utils/bento.nix without bento-units.nix next to utils/ stops with a clear message" {
	rm "$ROOT/bento-units.nix"
	run ! evaluate optionDefaults
	cp "$FLEET/generated/client/bento-units.nix" "$ROOT/bento-units.nix"
	assert_contains "$output" "../bento-units.nix was not found next to utils/"
}
