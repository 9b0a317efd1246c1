{
  description = "Two machines of the example fleet, sharing one flake";

  # A real fleet takes nixpkgs as an input and builds each machine with
  #   nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ ./kikimora.nix ./utils/bento.nix ]; }
  # where each machine's module imports its own hardware configuration (as
  # ../my-laptop does).
  # This example uses an offline stand-in instead, so it builds anywhere.
  outputs = { self }:
    let
      machine = name: import ./utils/offline-nixos.nix {
        inherit name;
        configuration = ./. + "/${name}.nix";
      };
    in
    {
      nixosConfigurations = {
        kikimora = machine "kikimora";
        nas = machine "nas";
      };
    };
}
