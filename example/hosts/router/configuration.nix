# A machine without flakes: bento builds it as
#   nixos-rebuild build --no-flake -I nixos-config=configuration.nix
{ ... }:
{
  imports = [
    ./hardware-configuration.nix
    ./utils/bento.nix
  ];
  boot.loader.grub.device = "/dev/sda";
  networking.hostName = "router";
  system.stateVersion = "24.05";
}
