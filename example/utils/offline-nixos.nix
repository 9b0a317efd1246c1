# A stand-in for nixpkgs.lib.nixosSystem, so that this example fleet
# evaluates and builds with Nix alone, offline (no nixpkgs download). Its
# "system" is a small store path named like a real one
# (<hash>-nixos-system-<name>-<version>) that changes whenever the machine's
# configuration file changes. A real fleet uses nixpkgs.lib.nixosSystem.
{ name, configuration, version ? "24.05" }:

{
  config.system.build.toplevel = builtins.derivation {
    name = "nixos-system-${name}-${version}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    configuration = builtins.readFile configuration;
    args = [
      "-c"
      ''
        mkdir -p "$out"
        printf '%s\n' "$configuration" > "$out/configuration"
        echo "kernel of ${name}" > "$out/kernel"
        echo "initrd of ${name}" > "$out/initrd"
        mkdir -p "$out/kernel-modules"
      ''
    ];
  };
}
