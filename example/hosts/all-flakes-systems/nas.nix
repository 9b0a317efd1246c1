{ ... }:
{
  networking.hostName = "nas";
  services.bento.reboot.enable = true;
  system.stateVersion = "24.05";
}
