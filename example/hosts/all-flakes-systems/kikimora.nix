{ ... }:
{
  networking.hostName = "kikimora";
  services.bento.updateCalendar = "*:0/10";
  system.stateVersion = "24.05";
}
