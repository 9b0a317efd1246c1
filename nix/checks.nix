# The flake's checks (`nix flake check`): bento builds; the built bento runs
# (--version, init, generate, in the build sandbox); and its NixOS modules,
# with the example fleet's generated settings, evaluate in NixOS.
{
  lib,
  pkgs,
  bento,
  nixosModules,
  nixosSystem,
}:

let
  # The modules as a fleet's machine and server import them, every optional
  # unit on: evaluated by NixOS itself (its module system and its options).
  example = nixosSystem {
    modules = [
      nixosModules.client
      nixosModules.server
      ../generated/client/bento-units.nix
      ../generated/server/bento-server-settings.nix
      {
        services.bento.reboot.enable = true;
        services.bento-server = {
          prune = {
            enable = true;
            fleetDir = "/srv/fleet";
          };
          rollout.advance = {
            enable = true;
            fleetDir = "/srv/fleet";
          };
          notify = {
            enable = true;
            fleetDir = "/srv/fleet";
          };
        };
      }
    ];
  };
  inherit (example) config;
  ofBento = lib.filterAttrs (name: _: lib.hasPrefix "bento" name || lib.hasPrefix "listen-update" name);
in
{
  package = bento;

  cli = pkgs.runCommand "bento-cli-check" { nativeBuildInputs = [ bento pkgs.openssh ]; } ''
    export HOME="$TMPDIR"
    bento --version
    mkdir fleet && cd fleet
    bento init
    # A machine without flakes, which generate reads without evaluating
    # (the example flake of init would fetch nixpkgs).
    rm -r hosts/example
    mkdir hosts/web
    echo '{ networking.hostName = "web"; }' > hosts/web/configuration.nix
    ssh-keygen -q -t ed25519 -N "" -C root@web -f "$TMPDIR/web"
    cp "$TMPDIR/web.pub" keys/web.pub
    bento generate
    test -s generated/systems/web/update.sh
    test -s generated/server/bento-server-settings.nix
    touch "$out"
  '';

  nixos-modules = pkgs.writeText "bento-nixos-modules.json" (
    builtins.toJSON {
      services = lib.mapAttrs (_: service: { inherit (service) serviceConfig script; }) (ofBento config.systemd.services);
      timers = lib.mapAttrs (_: timer: timer.timerConfig) (ofBento config.systemd.timers);
      sockets = lib.mapAttrs (_: socket: socket.socketConfig) (ofBento config.systemd.sockets);
      users = lib.attrNames (lib.filterAttrs (_: user: user.group == "sftp_users") config.users.users);
      sshd = config.services.openssh.extraConfig;
    }
  );
}
