# The bento client module, as a fleet imports it: put it in every machine's
# configuration (flake: modules = [ ./configuration.nix ./utils/bento.nix ];
# non-flake: imports = [ ./utils/bento.nix ]). `bento init` writes this file;
# it only joins two files that `bento generate` renders and `bento deploy`
# (or `bento build`) places next to utils/ in the machine's configuration:
# bento-module.nix, the module itself (options services.bento.* and the
# units, the same bento's as update.sh), and bento-units.nix, the fleet's
# settings from config.sh. (bento's flake has the same module as
# nixosModules.client, to import with ./bento-units.nix instead of this.)
let
  next = name:
    let file = ../. + "/${name}"; in
    if builtins.pathExists file then file
    else throw ''
      bento: ../${name} was not found next to utils/. It is written by
      `bento generate` and published by `bento deploy`; build this machine with
      `bento build` (which adds it) rather than from hosts/ directly.
    '';
in
{
  imports = [ (next "bento-module.nix") (next "bento-units.nix") ];
}
