# A machine without flakes: bento builds it as
#   nixos-rebuild build --no-flake -I nixos-config=configuration.nix
{ ... }:
{
  imports = [ ./utils/bento.nix ];
  networking.hostName = "router";
  system.stateVersion = "24.05";
}
