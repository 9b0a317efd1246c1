# The bento SFTP server module for NixOS: the options
# services.bento-server.* and what they make of the server: one SFTP-only
# user per system, locked in its chroot under chrootDir and logging in with
# its key; sshd's Match block for them; the chroots; a prune of what the
# machines upload; and, when enabled, timers for `bento prune`,
# `bento rollout advance`, `bento reboots` and `bento notify` (docs/sftp-server.md).
# Generic: it knows nothing of a fleet. A fleet's own part (its systems and
# their keys, CHROOT_DIR, sshd's limits sized for it, and the two texts
# `bento generate` renders from config.sh: the Match block and the logs
# prune) comes from bento-server-settings.nix, which `bento generate` writes
# and which only sets options.
#
# Two ways to import it, with the same result:
# - generated/server/sftp-server.nix, which imports the copy of this file
#   that `bento generate` writes next to it (bento-server-module.nix) and
#   the settings;
# - bento's flake: nixosModules.server, plus
#   generated/server/bento-server-settings.nix; there `package` (and so
#   prune.package, rollout.advance.package, notify.package) defaults to the
#   flake's bento.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.bento-server;
  advance = cfg.rollout.advance;
  inherit (lib) mkOption types;
  # Every command a unit's script runs comes from its `path` (or an absolute
  # path): a service's PATH is that list plus coreutils, findutils, gnugrep,
  # gnused and systemd, nothing else (nixos/lib/systemd-lib.nix), and `script`
  # runs under pkgs.runtimeShell with -e (makeJobScript there). bento's
  # commands take the deploy lock with flock(1), which holds it in a child
  # `sh -c` (src/exec.ts), and read the machines' accounts with getent(1)
  # (src/chroot/accounts.ts: NSS sources such as LDAP count); bin/bento finds
  # node by its store path.
  bentoPath = [ pkgs.util-linux pkgs.bash pkgs.getent ];
  # bin/bento of a timer's package, which must be set (by `package` or its own).
  bento = option: package:
    if package != null then "${package}/bin/bento"
    else throw "services.bento-server.${option}.package is not set: set it, or services.bento-server.package, to the bento package (bento's flake module, nixosModules.server, sets services.bento-server.package to its own)";
  # What bento renders for the fleet; with neither the fleet's settings nor a
  # value of the server's own, nothing sane can be served.
  fromSettings = name: throw "services.bento-server.generated.${name} is not set: import the fleet's generated/server/bento-server-settings.nix (written by `bento generate`) with this module";
  # The options of a timer that runs one bento command on the fleet
  # (prune, rollout.advance, reboots, notify): whether, with which package, on which
  # fleet directory, when.
  commandTimerOptions = { enableText, runs, calendar, fleetDirText ? "The fleet directory (where config.sh is), as for `bento --dir`.", fleetDirExample ? null }: {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = enableText;
    };
    package = mkOption {
      type = types.nullOr types.package;
      default = cfg.package;
      defaultText = lib.literalExpression "config.services.bento-server.package";
      description = "The bento package (its bin/bento ${runs}).";
    };
    fleetDir = mkOption ({
      type = types.str;
      description = fleetDirText;
    } // lib.optionalAttrs (fleetDirExample != null) { example = fleetDirExample; });
    calendar = mkOption {
      type = types.str;
      default = calendar.default;
      description = calendar.description;
    };
  };
  # The oneshot service of such a timer (`option`: its option path), running
  # `bento --dir <fleetDir> <command>` with bento's tools and `extraPath`.
  commandService = { option, settings, description, command, extraPath ? [ ] }: lib.mkIf settings.enable {
    inherit description;
    path = bentoPath ++ extraPath;
    serviceConfig.Type = "oneshot";
    script = "exec ${bento option settings.package} --dir ${lib.escapeShellArg settings.fleetDir} ${command}";
  };
in
{
  options.services.bento-server = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether this machine serves the fleet's configurations over SFTP.";
    };

    package = mkOption {
      type = types.nullOr types.package;
      default = null;
      defaultText = lib.literalMD "`null`; bento's flake module (nixosModules.server): bento's package";
      description = "The bento package: the default of prune.package, rollout.advance.package and notify.package.";
    };

    chrootDir = mkOption {
      type = types.str;
      default = "/home/chroot";
      description = "Where the machines' chroots live: CHROOT_DIR of config.sh (bento deploy publishes there), which the fleet's bento-server-settings.nix sets.";
    };

    prune = commandTimerOptions {
      enableText = ''
          Run `bento prune` on a timer: each machine keeps at most LOG_KEEP
          logs (config.sh) in its logs/, the oldest removed first, never one
          `bento status` needs. `bento deploy` prunes the systems it
          publishes; this timer keeps the others bounded too.
        '';
      runs = "runs the prune";
      fleetDirText = "The fleet directory (where config.sh is, which says CHROOT_DIR and LOG_KEEP), as for `bento --dir`.";
      fleetDirExample = "/srv/fleet";
      calendar = { default = "hourly"; description = "When to prune (systemd OnCalendar)."; };
    };

    systems = mkOption {
      type = types.attrsOf (types.listOf types.str);
      description = "The machines: SFTP user name and its authorized keys (keys/<name>.pub), which the fleet's bento-server-settings.nix sets. Setting it in the server's configuration replaces the fleet's list.";
      default = { };
    };

    uids = mkOption {
      type = types.attrsOf types.int;
      default = { };
      description = ''
        The uid of each machine's account, from the fleet's uids.txt (in
        SFTP_UIDS of config.sh, clear of the system range that the server's
        own packages share), which the fleet's bento-server-settings.nix sets.
        A system without one gets a system uid (below 1000) from NixOS.
        NixOS never renumbers an existing user (update-users-groups.pl only
        warns "not applying UID change"): bento deploy names the accounts
        to move, with `usermod -u`.
      '';
    };

    # Staged rollouts (ROLLOUT_WAVES): a timer that moves the rollout on.
    rollout.advance = commandTimerOptions {
      enableText = "Run `bento rollout advance` on a timer: publish the next wave once the current one succeeded, halt the rollout when it failed.";
      runs = "runs the advance";
      calendar = { default = "*:0/5"; description = "When the advance runs (systemd OnCalendar)."; };
    };

    # Reboot slots (REBOOT_MAX): a timer that hands them out.
    reboots = commandTimerOptions {
      enableText = "Run `bento reboots` on a timer: with REBOOT_MAX (config.sh), free the reboot slots of machines that rebooted and reported back (or expired) and grant them to the machines waiting longest (docs/reboots.md).";
      runs = "hands out the slots";
      calendar = { default = "*:0/5"; description = "When the slots are handed out (systemd OnCalendar): a machine waits for its slot up to this plus its poll interval."; };
    };

    # The texts `bento generate` renders for the fleet (bento-server-settings.nix
    # sets them): not options a server sets by hand.
    generated = {
      sshdMatchBlock = mkOption {
        type = types.lines;
        internal = true;
        default = fromSettings "sshdMatchBlock";
        defaultText = lib.literalMD "set by the fleet's bento-server-settings.nix";
        description = "The Match block of sshd_config for the machines' accounts (templates/server/sshd_config.hbs), appended last to sshd_config.";
      };
      pruneLogsScript = mkOption {
        type = types.lines;
        internal = true;
        default = fromSettings "pruneLogsScript";
        defaultText = lib.literalMD "set by the fleet's bento-server-settings.nix";
        description = "prune-logs.sh (templates/server/prune-logs.sh.hbs), with the fleet's LOG_SIZE_LIMIT: the script of bento-prune-logs.";
      };
    };

    notify = commandTimerOptions {
      enableText = ''
          Run `bento notify` on a timer: each machine that starts failing,
          goes silent, drifts or rolls back, a rollout that halts, and each
          recovery is sent once to
          NOTIFY_COMMAND and NOTIFY_URL of config.sh (read when it runs, so a
          URL's token never enters the Nix store).
        '';
      runs = "sends the alerts";
      calendar = { default = "*:0/5"; description = "When the alerts are looked for (systemd OnCalendar)."; };
    } // {
      path = mkOption {
        type = types.listOf types.package;
        default = [ ];
        example = lib.literalExpression "[ pkgs.curl ]";
        description = "Packages NOTIFY_COMMAND needs on its PATH (run by /bin/sh; the unit's PATH has only these, bento's tools and systemd's defaults).";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    users.groups.sftp_users = { };

    # A system that leaves the fleet (or cfg.systems) loses its login when the
    # server switches: nixpkgs' update-users-groups.pl deletes a user it
    # declared before (listed in /var/lib/nixos/declarative-users) and that is
    # no longer declared, whatever users.mutableUsers says, and keeps its uid
    # in /var/lib/nixos/uid-map, never given to another user (so its logs keep
    # their owner); and /etc/ssh/authorized_keys.d/<name>, the only file the
    # Match block reads keys from, exists only for declared users with keys
    # (authKeysFiles in nixos/modules/services/networking/ssh/sshd.nix; the
    # etc activation removes what a generation no longer has). With
    # systemd.sysusers.enable the account may stay, without a key. Its chroot
    # and logs stay: bento deploy has removed what was published for it.
    # Explicit uids above 999 keep isSystemUser: it only chooses the range of
    # an allocated uid, a user must be exactly one of isSystemUser and
    # isNormalUser, and a normal user would get subordinate uids and a
    # login shell (nixos/modules/config/users-groups.nix).
    users.users = lib.mkMerge [
      (lib.mapAttrs (name: keys: {
        isSystemUser = true;
        uid = cfg.uids.${name} or null;
        group = "sftp_users";
        home = "${cfg.chrootDir}/${name}";
        createHome = false;
        openssh.authorizedKeys.keys = keys;
      }) cfg.systems)
      {
        # The user bento deploy and build evaluate fleet code as
        # (docs/security.md): a system user and group of bento's own, which no
        # other service shares (a process of the same user could trace the
        # evaluator and change what gets built). No uid: "a free UID is picked
        # on activation", below 1000 with isSystemUser (the options uid and
        # isSystemUser of nixos/modules/config/users-groups.nix, which also
        # wants exactly one of isSystemUser and isNormalUser, and a group),
        # and kept: update-users-groups.pl records it in /var/lib/nixos/uid-map
        # and gives it back should the user be declared again (allocUid). Its
        # home and shell are NixOS's defaults: /var/empty (root's and empty;
        # systemd.sysusers makes no home for it) and nologin. "bento-eval" is
        # no system's name (src/protocol/names.ts); set in systems by hand,
        # its definitions conflict (group).
        bento-eval = {
          isSystemUser = true;
          group = "bento-eval";
          description = "bento fleet code evaluator";
        };
      }
    ];
    users.groups.bento-eval = { };

    services.openssh.enable = true;
    # sshd's MaxStartups and LoginGraceTime, sized for the fleet, come with
    # its settings (bento-server-settings.nix).
    # Last in sshd_config: nixpkgs writes its own lines first (mkOrder 0 in
    # nixos/modules/services/networking/ssh/sshd.nix), other modules at the
    # default order or mkAfter (1500). A global line after the Match block
    # would apply only to bento's users, or be refused inside a Match.
    services.openssh.extraConfig = lib.mkOrder 2000 cfg.generated.sshdMatchBlock;

    # Every minute, deletes from the machines' logs/ what sshd cannot stop
    # them from writing: files over LOG_SIZE_LIMIT, executable or set-ID
    # files, stale upload temporaries (prune-logs.sh, generated for the
    # fleet: generated.pruneLogsScript). It runs find (findutils) and the shell's builtins:
    # systemd's defaults (nixos/lib/systemd-lib.nix) cover it.
    systemd.services.bento-prune-logs = {
      description = "bento: keep the machines' logs/ within bounds";
      environment.BENTO_CHROOT_DIR = cfg.chrootDir;
      # getent: the machines' accounts, local or from NSS (prune-logs.sh).
      path = [ pkgs.getent ];
      serviceConfig.Type = "oneshot";
      script = cfg.generated.pruneLogsScript;
    };
    systemd.timers.bento-prune-logs = {
      description = "bento: keep the machines' logs/ within bounds, every minute";
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = "minutely";
    };

    # The chroots, as sshd and bento deploy want them: sshd accepts a chroot
    # only when every directory of its path is root's and writable by nobody
    # else; logs/ belongs to the machine, which uploads there. tmpfiles rules,
    # not an activation script: with systemd.sysusers.enable or
    # services.userborn.enable the users do not exist yet when activation
    # scripts run, and systemd-tmpfiles-resetup.service (which applies these
    # rules on every switch) runs after systemd-sysusers.service
    # (nixos/modules/system/boot/systemd/tmpfiles.nix; userborn.service is an
    # alias of it, nixos/modules/services/system/userborn.nix).
    systemd.tmpfiles.rules =
      let
        # A path for tmpfiles.d(5): quoted, with C escapes; % starts a specifier.
        quote = path: "\"" + lib.replaceStrings [ "\\" "\"" "%" "\n" ] [ "\\\\" "\\\"" "%%" "\\n" ] path + "\"";
        directory = path: owner: "d ${quote path} 0755 ${owner} -";
      in
      [ (directory cfg.chrootDir "root root") ]
      ++ lib.concatLists (lib.mapAttrsToList (name: _: [
        (directory "${cfg.chrootDir}/${name}" "root sftp_users")
        (directory "${cfg.chrootDir}/${name}/logs" "${name} sftp_users")
      ]) cfg.systems);

    # With systemd.sysusers.enable, NixOS makes every system user's home with
    # a tmpfiles line of its own, `d <home> <homeMode> <user> <group>`
    # (systemd.tmpfiles.settings.home-directories, written to
    # /etc/tmpfiles.d/home-directories.conf: nixos/modules/system/boot/systemd/sysusers.nix),
    # which would give each chroot to its machine with mode 0700, a chroot
    # sshd refuses. The rules above (00-nixos.conf) win over it only because
    # systemd-tmpfiles applies the first file naming a path (tmpfiles.d(5)),
    # an order of file names nothing promises. So that very entry is set here
    # to bento's owner and mode, by priority: both files then agree, in any
    # order. (services.userborn makes homes only for createHome users:
    # nixos/modules/services/system/userborn.nix.)
    systemd.tmpfiles.settings = lib.mkIf (config.systemd.sysusers.enable or false) {
      home-directories = lib.mapAttrs' (name: _: lib.nameValuePair "${cfg.chrootDir}/${name}" {
        d = {
          mode = lib.mkForce "0755";
          user = lib.mkForce "root";
          group = lib.mkForce "sftp_users";
        };
      }) cfg.systems;
    };

    # `bento prune` as root (it removes files the machines own), on a timer.
    systemd.services.bento-prune = commandService {
      option = "prune";
      settings = cfg.prune;
      description = "bento: keep at most LOG_KEEP logs per machine";
      command = "prune";
    };
    systemd.timers.bento-prune = lib.mkIf cfg.prune.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.prune.calendar;
        Persistent = true;
      };
    };

    # A halted rollout makes the unit fail (exit 1): it shows in
    # `systemctl --failed` and in whatever watches failed units.
    systemd.services.bento-rollout-advance = commandService {
      option = "rollout.advance";
      settings = advance;
      description = "bento: publish the next wave of the staged rollout once the current one succeeded";
      command = "rollout advance";
    };
    systemd.timers.bento-rollout-advance = lib.mkIf advance.enable {
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = advance.calendar;
    };

    # bento reboots as root (it writes into CHROOT_DIR), on a timer.
    systemd.services.bento-reboots = commandService {
      option = "reboots";
      settings = cfg.reboots;
      description = "bento: hand out the reboot slots of REBOOT_MAX";
      command = "reboots";
    };
    systemd.timers.bento-reboots = lib.mkIf cfg.reboots.enable {
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = cfg.reboots.calendar;
    };

    # Fails (exit 1) only when a hook did not get its alert, which the next
    # run sends again; a failing fleet is the hooks' news, not the unit's.
    systemd.services.bento-notify = commandService {
      option = "notify";
      settings = cfg.notify;
      description = "bento: send the fleet's alerts (NOTIFY_COMMAND, NOTIFY_URL)";
      command = "notify";
      extraPath = cfg.notify.path;
    };
    systemd.timers.bento-notify = lib.mkIf cfg.notify.enable {
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = cfg.notify.calendar;
    };
  };
}
