{
  description = "bento: pull-based deployment for fleets of NixOS machines over SFTP";

  # One input: nixpkgs, whose buildNpmPackage and importNpmLock build bento
  # (nix/package.nix) and whose lib and NixOS evaluate the modules.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          default = pkgs.callPackage ./nix/package.nix { };
          bento = self.packages.${system}.default;
        }
      );

      # pkgs.bento, built with the nixpkgs it is applied to.
      overlays.default = final: prev: { bento = final.callPackage ./nix/package.nix { }; };

      apps = forAllSystems (
        system: _pkgs: {
          default = {
            type = "app";
            program = lib.getExe self.packages.${system}.default;
            meta.description = "the bento CLI";
          };
        }
      );

      # The generic modules (nix/modules/): a fleet's settings, which
      # `bento generate` writes, go with them: bento-units.nix next to the
      # machine's configuration (bento build and deploy put it there) for the
      # client, generated/server/bento-server-settings.nix for the server.
      nixosModules = {
        client = { imports = [ ./nix/modules/client.nix ]; };
        server =
          { lib, pkgs, ... }:
          {
            imports = [ ./nix/modules/server.nix ];
            # The default of prune.package, rollout.advance.package and notify.package.
            services.bento-server.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          };
      };

      checks = forAllSystems (
        system: pkgs:
        import ./nix/checks.nix {
          inherit lib pkgs;
          bento = self.packages.${system}.default;
          inherit (self) nixosModules;
          nixosSystem = args: nixpkgs.lib.nixosSystem ({ inherit system; } // args);
        }
      );
    };
}
