# An offline stand-in for <nixpkgs/nixos>, for machines without flakes:
# with NIX_PATH=nixpkgs=<this directory's parent>,
#   nix-build '<nixpkgs/nixos>' -A system -I nixos-config=configuration.nix
# builds a small store path named like a real system
# (<hash>-nixos-system-<hostName>-24.05) that changes whenever the
# configuration file changes. A switch-to-configuration.in next to the
# configuration becomes its bin/switch-to-configuration (@out@: the system's
# store path), for machines that switch without nixos-rebuild (prebuilt). The repository's tests and demo use it; a real
# fleet uses nixpkgs.
{ configuration ? <nixos-config>, system ? "x86_64-linux" }:

let
  # A simple module evaluated with stub arguments, only to read its hostName.
  module = import configuration;
  attrs = if builtins.isFunction module then module { config = { }; lib = { }; pkgs = { }; modulesPath = ""; } else module;
  hostName = attrs.networking.hostName or "unnamed";
  switchScript = dirOf configuration + "/switch-to-configuration.in";
in
{
  system = builtins.derivation ({
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
        if [ -n "''${switchScript-}" ]; then
          mkdir -p "$out/bin"
          printf '%s' "$switchScript" | sed "s|@out@|$out|g" > "$out/bin/switch-to-configuration"
          chmod +x "$out/bin/switch-to-configuration"
        fi
      ''
    ];
  } // (if builtins.pathExists switchScript then { switchScript = builtins.readFile switchScript; } else { }));
}
