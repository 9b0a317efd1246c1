# The bento client module: import it in every machine's configuration
# (flake: modules = [ ./configuration.nix ./utils/bento.nix ]; non-flake:
# imports = [ ./utils/bento.nix ]). The units themselves come from
# bento-units.nix, which `bento generate` renders from config.sh and
# `bento deploy` places next to utils/ in the machine's configuration.
{ config, lib, pkgs, ... }:

let
  generatedUnits = ../bento-units.nix;
  generated =
    if builtins.pathExists generatedUnits then import generatedUnits
    else throw ''
      bento: ../bento-units.nix was not found next to utils/. It is written by
      `bento generate` and published by `bento deploy`; build this machine with
      `bento build` (which adds it) rather than from hosts/ directly.
    '';
  cfg = config.services.bento;
  inherit (lib) mkOption types;
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
      default = generated.defaults.updateCalendar;
      example = "hourly";
      description = "When to poll the server (systemd OnCalendar). Default: UPDATE_CALENDAR of config.sh.";
    };

    randomizedDelaySec = mkOption {
      type = types.str;
      default = generated.defaults.randomizedDelaySec;
      example = "10min";
      description = "Random delay added to each poll, to spread a fleet's load (systemd RandomizedDelaySec; \"0\" is off). Default: UPDATE_RANDOM_DELAY of config.sh, which is the interval of updateCalendar when unset.";
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
      default = generated.defaults.serverPublicKey or null;
      example = "bento-server-20250101:dGhpcyBpcyBub3QgYSByZWFsIGtleSwganVzdCBhbiBleGFtcGw=";
      description = ''
        The bento server's Nix signing key (its SIGNING_KEY, made when a first
        system became prebuilt). When set, the machine's Nix trusts what it
        signed (nix.settings.trusted-public-keys), the closures bento publishes
        for prebuilt systems. Default: the fleet's key, null when it has none.
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
        default = generated.defaults.rebootCalendar;
        example = "Sun 03:00";
        description = "When the reboot check runs (systemd OnCalendar). Default: REBOOT_CALENDAR of config.sh.";
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
        default = generated.defaults.listenPort;
        description = ''
          TCP port of the listen-update socket. Default: LISTEN_PORT of config.sh.
          A switch does not restart a changed socket: after changing it, run
          `systemctl restart listen-update.socket`.
        '';
      };
      allowedAddresses = mkOption {
        type = types.listOf (types.strMatching "any|localhost|link-local|multicast|[0-9]{1,3}([.][0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(/[0-9]{1,3})?");
        default = generated.defaults.listenAllowedAddresses or [ ];
        example = [ "192.168.1.0/24" "localhost" ];
        description = ''
          Addresses whose connections to listen.port start an update: IPv4 or
          IPv6 addresses or prefixes, or one of systemd's words any, localhost,
          link-local, multicast (the syntax of IPAddressAllow=,
          systemd.resource-control(5), which filters them before the socket
          accepts a connection). Host names go in listen.allowedHosts.
          Default: the addresses among REMOTE_IP of config.sh (the bento
          servers). [ "any" ] lets every address trigger; with this and
          allowedHosts empty, none can. A change needs
          `systemctl restart listen-update.socket`.
        '';
      };
      allowedHosts = mkOption {
        type = types.listOf (types.strMatching "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*[.]?");
        default = generated.defaults.listenAllowedHosts or [ ];
        example = [ "bento.example.org" ];
        description = ''
          Host names whose addresses may trigger an update, besides
          listen.allowedAddresses. systemd's IPAddressAllow= takes no names,
          so while this list is not empty the socket accepts every address
          and each connection's instance decides: it resolves these names
          (getent ahosts, as the machine's resolver answers at that moment;
          a name that does not resolve allows nothing) and closes, with no
          update, a connection from any other address. Default: the host
          names among REMOTE_IP of config.sh (the bento servers).
        '';
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open listen.port in the firewall.";
      };
    };
  };

  config = lib.mkIf cfg.enable (generated.units { inherit cfg config lib pkgs; });
}
