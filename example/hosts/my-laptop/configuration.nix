{ ... }:
{
  imports = [ ./hardware-configuration.nix ];
  boot.loader.systemd-boot.enable = true;
  networking.hostName = "my-laptop";
  # A laptop is often offline: spread its polls and do not wait for it.
  services.bento.randomizedDelaySec = "5min";
  system.stateVersion = "24.05";
}
