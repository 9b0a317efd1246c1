# The bento client module: the options services.bento.* and the systemd
# units that make a machine poll the bento server and apply what it
# publishes (docs/machines.md). Generic: it knows nothing of a fleet. A
# fleet's settings (config.sh's UPDATE_CALENDAR, REBOOT_CALENDAR,
# LISTEN_PORT, the servers of REMOTE_IP, the server's signing key) come from
# bento-units.nix, which `bento generate` writes and which only sets these
# options (with mkDefault: a machine's own setting wins).
#
# Two ways to import it, with the same result:
# - a fleet's utils/bento.nix (written by `bento init`) imports the copy of
#   this file that `bento generate` writes (generated/client/bento-module.nix,
#   published next to utils/ as bento-module.nix) and bento-units.nix: the
#   units then always match the update.sh of the same bento;
# - bento's flake: nixosModules.client, plus ./bento-units.nix.
#
# Its defaults are bento's own (src/config/schema.ts), for a machine that
# imports it without a fleet's settings.
{ config, lib, pkgs, options, ... }:

let
  cfg = config.services.bento;
  # systemd-boot's boot counting (boot.loader.systemd-boot.bootCounting, added
  # to nixpkgs by PR #447173 for 26.05, in
  # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix: entries
  # written with a counter of `tries`, which systemd-boot decrements on each
  # boot). Older nixpkgs lack the option: read only where it is declared.
  bootCounting = lib.hasAttrByPath [ "boot" "loader" "systemd-boot" "bootCounting" "enable" ] options
    && config.boot.loader.systemd-boot.bootCounting.enable;
  inherit (lib) mkOption types;
  # systemd's words for address sets, as prefixes (systemd.resource-control(5)).
  listenWords = {
    any = [ "0.0.0.0/0" "::/0" ];
    localhost = [ "127.0.0.0/8" "::1/128" ];
    link-local = [ "169.254.0.0/16" "fe80::/64" ];
    multicast = [ "224.0.0.0/4" "ff00::/8" ];
  };
  # IPAddressAllow= takes no host names: with some allowed, every address
  # reaches the socket and the instance alone decides.
  listenFilteredBySystemd = cfg.listen.allowedHosts == [ ] && !(builtins.elem "any" cfg.listen.allowedAddresses);
in
{
  options.services.bento = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether the machine polls the bento server and applies new configurations.";
    };

    updateCalendar = mkOption {
      type = types.str;
      default = "*:0/15";
      example = "hourly";
      description = "When to poll the server (systemd OnCalendar). The fleet's bento-units.nix sets UPDATE_CALENDAR of config.sh.";
    };

    randomizedDelaySec = mkOption {
      type = types.str;
      default = "15min";
      example = "10min";
      description = "Random delay added to each poll, to spread a fleet's load (systemd RandomizedDelaySec; \"0\" is off). The fleet's bento-units.nix sets UPDATE_RANDOM_DELAY of config.sh, which is the interval of UPDATE_CALENDAR when unset.";
    };

    fixedRandomDelay = mkOption {
      type = types.bool;
      default = true;
      example = false;
      description = ''
        Keep the same random delay on every run (systemd FixedRandomDelay,
        systemd 247 or later): each machine polls at its own stable offset in
        the interval, rather than a new one drawn each time, which could put
        two polls of one machine minutes apart and then none for a long
        while. As system.autoUpgrade.fixedRandomDelay in nixpkgs.
      '';
    };

    serverPublicKey = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "bento-server-20250101:dGhpcyBpcyBub3QgYSByZWFsIGtleSwganVzdCBhbiBleGFtcGw=";
      description = ''
        The bento server's Nix signing key (its SIGNING_KEY, made when a first
        system became prebuilt). When set, the machine's Nix trusts what it
        signed (nix.settings.trusted-public-keys), the closures bento publishes
        for prebuilt systems. The fleet's bento-units.nix sets the fleet's
        key, null when it has none.
      '';
    };

    reboot = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Reboot at reboot.calendar when the kernel, initrd or kernel modules changed.";
      };
      calendar = mkOption {
        type = types.str;
        default = "04:00";
        example = "Sun 03:00";
        description = "When the reboot check runs (systemd OnCalendar). The fleet's bento-units.nix sets REBOOT_CALENDAR of config.sh.";
      };
    };

    healthCheck = {
      command = mkOption {
        type = types.nullOr types.lines;
        default = null;
        example = lib.literalExpression ''"''${pkgs.curl}/bin/curl -fsS http://localhost:8080/health"'';
        description = ''
          A check the machine runs (with sh, as root) after switching to a new
          configuration and before reporting success: exit 0 means healthy.
          Besides it, a systemd unit that was fine before the switch and failed
          after it makes the system unhealthy. An unhealthy system is rolled
          back to its previous generation and reports a rollback whose log
          says which check failed (with staged rollouts, the rollout halts).
          Name programs by their store path: the check runs with the update
          service's PATH.
        '';
      };
      timeout = mkOption {
        type = types.ints.positive;
        default = 30;
        description = "Seconds one run of healthCheck.command may take before it counts as failed.";
      };
      gracePeriod = mkOption {
        type = types.ints.unsigned;
        default = 120;
        description = "Seconds after the switch during which failing checks (the command, failed units) are tried again before the system counts as unhealthy.";
      };
    };

    listen = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Start an update when an allowed peer (listen.allowedAddresses,
          listen.allowedHosts: by default only the bento servers) connects to
          listen.port and sends a request head within 5 seconds, and stream
          its journal back. Triggers that come while an update is pending or
          running join that update.
        '';
      };
      port = mkOption {
        type = types.port;
        default = 51337;
        description = ''
          TCP port of the listen-update socket. The fleet's bento-units.nix
          sets LISTEN_PORT of config.sh.
          A switch does not restart a changed socket: after changing it, run
          `systemctl restart listen-update.socket`.
        '';
      };
      allowedAddresses = mkOption {
        type = types.listOf (types.strMatching "any|localhost|link-local|multicast|[0-9]{1,3}([.][0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(/[0-9]{1,3})?");
        default = [ ];
        example = [ "192.168.1.0/24" "localhost" ];
        description = ''
          Addresses whose connections to listen.port start an update: IPv4 or
          IPv6 addresses or prefixes, or one of systemd's words any, localhost,
          link-local, multicast (the syntax of IPAddressAllow=,
          systemd.resource-control(5), which filters them before the socket
          accepts a connection). Host names go in listen.allowedHosts.
          The fleet's bento-units.nix sets the addresses among REMOTE_IP of
          config.sh (the bento servers); without it, none. [ "any" ] lets every address trigger; with this and
          allowedHosts empty, none can. A change needs
          `systemctl restart listen-update.socket`.
        '';
      };
      allowedHosts = mkOption {
        type = types.listOf (types.strMatching "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*[.]?");
        default = [ ];
        example = [ "bento.example.org" ];
        description = ''
          Host names whose addresses may trigger an update, besides
          listen.allowedAddresses. systemd's IPAddressAllow= takes no names,
          so while this list is not empty the socket accepts every address
          and each connection's instance decides: it resolves these names
          (getent ahosts, as the machine's resolver answers at that moment;
          a name that does not resolve allows nothing) and closes, with no
          update, a connection from any other address. The fleet's
          bento-units.nix sets the host names among REMOTE_IP of config.sh
          (the bento servers).
        '';
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open listen.port in the firewall.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.tmpfiles.rules = [ "d /var/bento 0700 root root -" ];

    # The health gate of the new system: the client reads these from the
    # system it just switched to (<toplevel>/etc/bento/, which NixOS builds
    # from environment.etc: nixos/modules/system/etc/etc.nix), so a
    # configuration brings its own check.
    environment.etc."bento/health.conf".text = ''
      timeout=${toString cfg.healthCheck.timeout}
      grace=${toString cfg.healthCheck.gracePeriod}
    '';
    environment.etc."bento/health-check" = lib.mkIf (cfg.healthCheck.command != null) { text = cfg.healthCheck.command; };

    # Polls the server and applies new configurations (update.sh).
    systemd.services.bento-upgrade = {
      description = "bento: pull and apply this machine's configuration";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      # A service gets none of a login session's variables: no NIX_PATH (a
      # machine without flakes builds <nixpkgs/nixos> from it), no HOME. Pass
      # what nixpkgs' own upgrade service passes
      # (nixos/modules/tasks/auto-upgrade.nix): Nix's variables, the search
      # path of the system's sessions, HOME, and the proxy settings.
      environment = config.nix.envVars // {
        NIX_PATH = config.environment.sessionVariables.NIX_PATH or null;
        HOME = "/root";
      } // config.networking.proxy.envVars;
      # The unit's PATH is this list, then coreutils, findutils, grep, sed
      # and systemd (the default `path` in nixos/lib/systemd-lib.nix), and
      # nothing else: no shell, no /run/current-system/sw/bin. Every command
      # update.sh runs comes from one of them (coreutils: date, timeout, od,
      # df, sha256sum, ...; findutils: find, xargs; systemd: systemctl,
      # systemd-run; and below), or by an absolute path NixOS guarantees
      # (/bin/sh, for the health check; a system's own
      # bin/switch-to-configuration).
      path = [
        config.system.build.nixos-rebuild
        config.nix.package # nix flake update (SELF_UPDATE); nixos-rebuild runs the nix on PATH
        pkgs.openssh # sftp, ssh
        pkgs.git # a flake in /var/bento is a git tree, which Nix reads with git
        pkgs.gzip # the logs
        pkgs.diffutils # cmp
        pkgs.util-linux # flock
      ];
      # A switch must not restart the service that is running the switch.
      restartIfChanged = false;
      unitConfig.X-StopOnRemoval = false;
      serviceConfig = {
        Type = "oneshot";
        WorkingDirectory = "/var/bento";
        ExecStart = "/bin/sh /var/bento/update.sh";
      };
    };

    systemd.timers.bento-upgrade = {
      description = "bento: poll the server for a new configuration";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.updateCalendar;
        RandomizedDelaySec = cfg.randomizedDelaySec;
        # The delay is drawn once per machine (from its machine id and the
        # timer's name), not on every run, as nixpkgs' system.autoUpgrade
        # does with fixedRandomDelay (nixos/modules/tasks/auto-upgrade.nix).
        FixedRandomDelay = cfg.fixedRandomDelay;
        Persistent = true;
      };
    };

    # Reboots at a quiet hour when the kernel, initrd or modules changed:
    # the client's own check (`update.sh reboot`: reboot_when_due in
    # bento-client.sh), the one the REBOOT flag runs after a switch, so both
    # paths obey the reboot window (REBOOT_WINDOW) and the fleet's cap
    # (REBOOT_MAX: it polls for its slot first) alike. Its PATH: flock (the
    # client's lock: never during an update), sftp and ssh (the poll);
    # readlink, date, sed and systemctl are on every service's
    # (nixos/lib/systemd-lib.nix).
    systemd.services.bento-reboot = lib.mkIf cfg.reboot.enable {
      description = "bento: reboot into a new kernel when one was installed";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      path = [ pkgs.util-linux pkgs.openssh ];
      serviceConfig.Type = "oneshot";
      script = ''
        if [ ! -f /var/bento/update.sh ]; then
          echo "bento: /var/bento/update.sh is missing (the machine was never bootstrapped): no reboot check"
          exit 0
        fi
        exec /bin/sh /var/bento/update.sh reboot
      '';
    };

    # A bad boot undoes itself (docs/reboots.md). systemd's Automatic Boot
    # Assessment (systemd.io/AUTOMATIC_BOOT_ASSESSMENT, bootup(7)):
    # systemd-bless-boot.service, ordered after boot-complete.target, marks
    # the boot entry good (removes its counter) once that target is reached;
    # a unit that is RequiredBy= and Before= boot-complete.target and fails
    # keeps it from being reached, so the entry is not blessed, and after its
    # tries systemd-boot boots the previous generation. This unit is that
    # check: the same as the health gate after a switch (healthCheck.command,
    # tried again within healthCheck.gracePeriod, each run within
    # healthCheck.timeout), and no unit failed since this boot (as systemd's
    # own systemd-boot-check-no-failures.service judges, after the boot's
    # targets; bento's own units left out). Never the server's reachability: a
    # laptop that boots offline has not booted badly. Without boot counting,
    # nothing is added.
    systemd.services.bento-boot-health = lib.mkIf bootCounting {
      description = "bento: is this boot healthy (boot counting: bless it, or fall back)";
      requiredBy = [ "boot-complete.target" ];
      before = [ "boot-complete.target" ];
      after = [ "default.target" "multi-user.target" "graphical.target" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      # systemctl, timeout, sleep and date are on every service's PATH (nixos/lib/systemd-lib.nix).
      script = ''
        deadline=$(( $(date +%s) + ${toString cfg.healthCheck.gracePeriod} ))
        while :; do
          problem=""
          # bento's own units left out: an update that cannot reach the server says nothing of this boot.
          failed=$(systemctl --failed --plain --no-legend --no-pager | sed -e 's/^[^[:alnum:]]*//' -e 's/[[:space:]].*//' |
            grep -v -e '^bento-' -e '^listen-update@' | tr '\n' ' ' || :)
          if [ -n "$failed" ]; then
            problem="units failed since this boot: $failed"
          elif [ -f /etc/bento/health-check ] && ! timeout ${toString cfg.healthCheck.timeout} /bin/sh /etc/bento/health-check; then
            problem="its health check (services.bento.healthCheck.command) failed"
          fi
          if [ -z "$problem" ]; then
            echo "bento: this boot is healthy"
            exit 0
          fi
          if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bento: this boot is not healthy: $problem; it is not blessed, and after its tries the previous generation boots" >&2
            exit 1
          fi
          sleep 5
        done
      '';
    };

    systemd.timers.bento-reboot = lib.mkIf cfg.reboot.enable {
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = cfg.reboot.calendar;
    };

    # A connection to the listen port starts an update and streams its
    # journal back, so an update can be triggered from a browser or by
    # `bento trigger`. A switch does not restart a changed socket
    # (switch-to-configuration leaves .socket units alone:
    # nixos/modules/system/activation/switch-to-configuration.pl and its
    # successor pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs):
    # after changing listen.port or the allowed peers, run
    # `systemctl restart listen-update.socket`.
    systemd.sockets.listen-update = lib.mkIf cfg.listen.enable {
      description = "bento: trigger an update from the network";
      wantedBy = [ "sockets.target" ];
      listenStreams = [ (toString cfg.listen.port) ];
      socketConfig = {
        Accept = true;
        # A burst of connections must not stop the socket for good (systemd's
        # trigger limit); nixpkgs does the same for sshd's socket
        # (nixos/modules/services/networking/ssh/sshd.nix).
        TriggerLimitIntervalSec = 0;
        # Of the 64 connections systemd serves at once (MaxConnections=), one
        # address holds at most 8 (systemd.socket(5)).
        MaxConnectionsPerSource = 8;
      } // lib.optionalAttrs listenFilteredBySystemd {
        # Only these addresses reach the socket (systemd.resource-control(5):
        # addresses, prefixes and the words any, localhost, link-local,
        # multicast, never host names); with none, no address does.
        IPAddressDeny = "any";
      } // lib.optionalAttrs (listenFilteredBySystemd && cfg.listen.allowedAddresses != [ ]) {
        IPAddressAllow = cfg.listen.allowedAddresses;
      };
    };

    # One instance per connection, with the peer's address in REMOTE_ADDR
    # (systemd.socket(5), Accept=yes). It checks the peer (the only check when
    # host names are allowed, which IPAddressAllow= cannot name), reads the
    # request head within 5 seconds or closes the connection with no update,
    # then starts bento-upgrade: a start while a run is pending or running is
    # merged into that run (systemd merges a start job into the unit's
    # waiting or running one: src/core/job.c, job_install), so a burst of
    # triggers is one poll. systemctl, journalctl, date and sleep are on
    # every service's PATH (nixos/lib/systemd-lib.nix); getent resolves the
    # allowed host names; the script runs under bash (makeJobScript there).
    systemd.services."listen-update@" = lib.mkIf cfg.listen.enable {
      description = "bento: run an update and stream its journal";
      # The update may switch the system: that must not cut the stream showing it.
      restartIfChanged = false;
      path = [ pkgs.getent ];
      environment = {
        # Prefixes, systemd's words spelled out (systemd.resource-control(5)).
        BENTO_LISTEN_ADDRESSES = lib.concatStringsSep " " (lib.concatMap (entry: listenWords.${entry} or [ entry ]) cfg.listen.allowedAddresses);
        BENTO_LISTEN_HOSTS = lib.concatStringsSep " " cfg.listen.allowedHosts;
      };
      serviceConfig = {
        StandardInput = "socket";
        StandardOutput = "socket";
        StandardError = "journal";
      };
      script = ''
        set -f
        peer=''${REMOTE_ADDR:-}

        # bits ADDRESS: an IPv4 or IPv6 address as its 32 or 128 binary digits.
        bits() {
          local address=$1 out="" group value i
          local -a groups left right
          if [[ $address =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
            for value in "''${BASH_REMATCH[@]:1}"; do
              [ "$((10#$value))" -le 255 ] || return 1
              for ((i = 7; i >= 0; i--)); do out+=$(((10#$value >> i) & 1)); done
            done
          elif [[ $address == *:* && $address =~ ^[0-9A-Fa-f:]+$ ]]; then
            if [[ $address == *::* ]]; then
              [[ ''${address#*::} != *::* ]] || return 1
              IFS=: read -r -a left <<< "''${address%%::*}"
              IFS=: read -r -a right <<< "''${address#*::}"
              groups=("''${left[@]}")
              for ((i = ''${#left[@]} + ''${#right[@]}; i < 8; i++)); do groups+=(0); done
              groups+=("''${right[@]}")
            else
              IFS=: read -r -a groups <<< "$address"
            fi
            [ "''${#groups[@]}" -eq 8 ] || return 1
            for group in "''${groups[@]}"; do
              [[ $group =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
              for ((i = 15; i >= 0; i--)); do out+=$(((16#$group >> i) & 1)); done
            done
          else
            return 1
          fi
          printf '%s' "$out"
        }

        # allowed: whether the peer is in an allowed prefix, or is one of the
        # addresses an allowed host name has now.
        allowed() {
          local mine entry net length other address _
          mine=$(bits "$peer") || return 1
          for entry in $BENTO_LISTEN_ADDRESSES; do
            net=$(bits "''${entry%/*}") || continue
            length=''${#net}
            [[ $entry != */* ]] || length=''${entry##*/}
            if [[ $length =~ ^[0-9]{1,3}$ ]] && [ "$length" -le "''${#net}" ] && [ "''${#mine}" -eq "''${#net}" ] &&
              [ "''${mine:0:length}" = "''${net:0:length}" ]; then
              return 0
            fi
          done
          for entry in $BENTO_LISTEN_HOSTS; do
            while read -r address _; do
              other=$(bits "$address") || continue
              [ "$other" != "$mine" ] || return 0
            done < <(timeout 5 getent ahosts "$entry" || :)
          done
          return 1
        }

        if ! allowed; then
          echo "bento: a connection from ''${peer:-an unknown address} is not allowed (services.bento.listen): closed, no update" >&2
          exit 0
        fi

        # The request head, up to its empty line, whole within 5 seconds and
        # at most 100 lines of 4096 bytes, before anything else: else the
        # connection is closed with no update. It is read before answering,
        # for a connection closed with unread input is reset, and the client
        # loses the end of the stream.
        cr=$(printf '\r')
        deadline=$((SECONDS + 5))
        lines=0
        while :; do
          remaining=$((deadline - SECONDS))
          if [ "$remaining" -le 0 ] || [ "$lines" -ge 100 ] || ! IFS= read -r -n 4096 -t "$remaining" line || [ "''${#line}" -ge 4096 ]; then
            echo "bento: $peer sent no whole request head in 5 seconds: closed, no update" >&2
            exit 0
          fi
          [ -n "''${line%"$cr"}" ] || break
          lines=$((lines + 1))
        done

        printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
        since=$(date '+%Y-%m-%d %H:%M:%S')
        # Follow the journal first, then start and wait: a oneshot unit is
        # "activating" (not "active") for as long as it runs, and a start
        # without --no-block returns when it has finished (or, merged into a
        # run already under way, when that one has).
        journalctl --no-pager --follow --since "$since" -u bento-upgrade.service &
        journal=$!
        status=0
        systemctl start bento-upgrade.service || status=$?
        # Leave the follower a moment for the last lines, then stop it.
        sleep 1
        kill "$journal" 2> /dev/null || :
        if [ "$status" -ne 0 ]; then
          echo "bento: the update failed (systemctl start bento-upgrade.service: exit status $status)"
        fi
      '';
    };

    # Nix trusts what the bento server signed: the closures of prebuilt
    # systems (docs/prebuilt.md). update.sh passes the key of the
    # configuration it applies itself; this makes it the machine's setting
    # too (nixos/modules/config/nix.nix: nix.settings → nix.conf).
    nix.settings.trusted-public-keys = lib.mkIf (cfg.serverPublicKey != null) [ cfg.serverPublicKey ];

    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.listen.enable && cfg.listen.openFirewall) [ cfg.listen.port ];
  };
}
