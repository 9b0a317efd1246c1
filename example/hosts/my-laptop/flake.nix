{
  description = "A laptop of the example fleet, in a flake of its own";

  outputs = { self }: {
    nixosConfigurations.my-laptop = import ./utils/offline-nixos.nix {
      name = "my-laptop";
      configuration = ./configuration.nix;
    };
  };
}
