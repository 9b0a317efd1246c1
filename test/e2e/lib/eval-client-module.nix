# Evaluates the client's Nix files as a machine receives them (utils/bento.nix
# with bento-units.nix next to utils/) with stub module arguments, so that the
# units can be checked without nixpkgs (13-nix-units.bats).
#
#   nix-instantiate --eval --strict --json lib/eval-client-module.nix \
#     --arg configRoot /path/to/config --arg cfg '{ ... }' -A units
{ configRoot, cfg ? { } }:

let
  # lib.mkIf as nixpkgs defines it, and just enough of mkOption and types.
  lib = {
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkOption = attrs: attrs // { _type = "option"; };
    types = { bool = "bool"; str = "str"; port = "port"; };
  };
  pkgs = builtins.listToAttrs (map (name: { inherit name; value = "<pkgs.${name}>"; })
    [ "openssh" "git" "gzip" "coreutils" "gnugrep" "gnused" "diffutils" "util-linux" "systemd" ]);
  config = {
    system.build.nixos-rebuild = "<nixos-rebuild>";
    nix.package = "<nix>";
    services.bento = cfg;
  };
  generated = import (configRoot + "/bento-units.nix");
  module = import (configRoot + "/utils/bento.nix") { inherit config lib pkgs; };
  # The option defaults, as the module system would give them.
  defaultsOf = options: builtins.mapAttrs (_: option: if option ? _type then option.default else defaultsOf option) options;
in
{
  inherit (generated) defaults;
  units = generated.units { inherit cfg config lib pkgs; };
  optionDefaults = defaultsOf module.options.services.bento;
  moduleConfig = module.config;
}
