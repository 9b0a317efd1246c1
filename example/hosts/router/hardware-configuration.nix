# The machine's own hardware configuration: in a real fleet, its
# /etc/nixos/hardware-configuration.nix (written by nixos-generate-config),
# copied here. This example's offline stand-in for nixpkgs never reads it.
{ ... }:
{
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
}
