# bento for Nix without flakes (flake.nix has the same, per system):
#
#   nix-build -A package                 # ./result/bin/bento
#   nix-env -f . -iA package             # bento on your PATH
#   imports = [ (import /path/to/bento { inherit pkgs; }).nixosModules.server ];
#
# The package is built with the nixpkgs given as `pkgs` (nixpkgs 24.11 or
# later: nix/package.nix says why).
{
  pkgs ? import <nixpkgs> { },
}:

let
  package = pkgs.callPackage ./nix/package.nix { };
in
{
  inherit package;

  # pkgs.bento, built with the nixpkgs it is applied to.
  overlay = final: prev: { bento = final.callPackage ./nix/package.nix { }; };

  # The generic modules; a fleet's settings, which `bento generate` writes,
  # go with them (bento-units.nix, generated/server/bento-server-settings.nix).
  nixosModules = {
    client = { imports = [ ./nix/modules/client.nix ]; };
    server =
      { lib, ... }:
      {
        imports = [ ./nix/modules/server.nix ];
        # The default of prune.package, rollout.advance.package and notify.package.
        services.bento-server.package = lib.mkDefault package;
      };
  };
}
