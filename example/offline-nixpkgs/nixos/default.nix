# An offline stand-in for <nixpkgs/nixos>, for machines without flakes:
# with NIX_PATH=nixpkgs=<this directory's parent>,
#   nix-build '<nixpkgs/nixos>' -A system -I nixos-config=configuration.nix
# builds a small store path named like a real system
# (<hash>-nixos-system-<hostName>-24.05) that changes whenever the
# configuration file changes. The repository's tests and demo use it; a real
# fleet uses nixpkgs.
{ configuration ? <nixos-config>, system ? "x86_64-linux" }:

let
  # A simple module evaluated with stub arguments, only to read its hostName.
  module = import configuration;
  attrs = if builtins.isFunction module then module { config = { }; lib = { }; pkgs = { }; modulesPath = ""; } else module;
  hostName = attrs.networking.hostName or "unnamed";
in
{
  system = builtins.derivation {
    name = "nixos-system-${hostName}-24.05";
    inherit system;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    configuration = builtins.readFile configuration;
    args = [
      "-c"
      ''
        mkdir -p "$out/kernel-modules"
        printf '%s\n' "$configuration" > "$out/configuration"
        echo "kernel of ${hostName}" > "$out/kernel"
        echo "initrd of ${hostName}" > "$out/initrd"
      ''
    ];
  };
}
