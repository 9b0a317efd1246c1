# bento as a Nix package: the CLI built with nixpkgs' buildNpmPackage
# (pkgs/build-support/node/build-npm-package/default.nix in NixOS/nixpkgs),
# which runs `npm run build` (tsc) and installs what `npm pack` would ship
# (package.json's `files`) under lib/node_modules/bento, with bin/bento
# running it with this nodejs (its hooks/npm-install-hook.sh). The npm
# dependencies come from package-lock.json through importNpmLock
# (pkgs/build-support/node/import-npm-lock/default.nix and its
# hooks/npm-config-hook.sh), one fixed-output fetch per locked package,
# checked against the lock's `integrity`: no npmDepsHash to keep in sync.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  makeWrapper,
  nodejs,
  stdenvNoCC,
  cacert,
  # What bento runs (src/exec.ts, src/nix/, src/chroot/accounts.ts,
  # src/nix/flake-tree.ts):
  nix, # nix, nix-build, nix-instantiate, nix-store, nix-daemon, nix-env, nix-copy-closure
  openssh, # ssh: `bento build --target-host`, and what nix-copy-closure runs
  util-linux, # flock (the deploy lock), setpriv (evaluation as another user)
  getent, # the machines' accounts, local or from NSS
  git, # a flake host is staged as a git work tree
  coreutils, # env, cat
  bash, # sh: flock and setpriv run `sh -c`
}:

let
  packageJson = lib.importJSON ../package.json;
  packageLock = lib.importJSON ../package-lock.json;

  # package-lock.json carries no `resolved` URL (it is written with npm's
  # omit-lockfile-registry-resolved), and importNpmLock fetches a package
  # from its `resolved` URL. So each locked registry package is fetched here
  # by nixpkgs' npm itself (`npm pack NAME@VERSION`, from the registry npm is
  # set up with: its default, or NPM_CONFIG_REGISTRY), as a fixed-output
  # derivation whose hash is the lock's `integrity`, and handed to
  # importNpmLock through its packageSourceOverrides (nixpkgs 24.11 and
  # later). An entry that has a `resolved` URL is left to importNpmLock.
  fetchLocked =
    path: module:
    let
      name = module.name or (lib.last (lib.splitString "node_modules/" path));
    in
    stdenvNoCC.mkDerivation {
      # npm takes a file: dependency for a tarball only when its name ends in .tgz.
      name = "${lib.strings.sanitizeDerivationName (lib.last (lib.splitString "/" name))}-${module.version}.tgz";
      nativeBuildInputs = [ nodejs ];
      outputHashMode = "flat";
      outputHash = module.integrity;
      impureEnvVars = lib.fetchers.proxyImpureEnvVars ++ [ "NPM_CONFIG_REGISTRY" ];
      SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt";
      NODE_EXTRA_CA_CERTS = "${cacert}/etc/ssl/certs/ca-bundle.crt";
      spec = "${name}@${module.version}";
      buildCommand = ''
        export HOME="$TMPDIR"
        mkdir "$TMPDIR/pack"
        npm pack --ignore-scripts --pack-destination "$TMPDIR/pack" "$spec"
        mv "$TMPDIR"/pack/*.tgz "$out"
      '';
    };

  lockedPackages = lib.filterAttrs (
    path: module: path != "" && !(module.link or false) && !(module ? resolved) && module ? integrity
  ) packageLock.packages;

  sourceFiles = [
    "package.json"
    "package-lock.json"
    "tsconfig.json"
    "tsconfig.build.json"
  ];
  sourceDirs = [
    "src"
    "templates"
    "utils"
    "nix/modules"
  ];

  canOverride = (lib.functionArgs importNpmLock) ? packageSourceOverrides;

  # The tools bento runs, first on its PATH (the system's PATH follows: sudo
  # and systemd-run, which `bento build switch` runs, come from the system).
  runtimeTools = [
    nix
    openssh
    util-linux
    getent
    git
    coreutils
    bash
  ];
in
assert lib.assertMsg canOverride
  "bento: this nixpkgs' importNpmLock has no packageSourceOverrides (nixpkgs 24.11 or later has it)";
buildNpmPackage {
  pname = "bento";
  inherit (packageJson) version;

  # What the build reads, and nothing else (tests, docs, generated/ stay
  # out, so that editing them does not rebuild bento).
  src = lib.cleanSourceWith {
    name = "bento-source";
    src = ../.;
    filter =
      path: _type:
      let
        relative = lib.removePrefix "${toString ../.}/" (toString path);
      in
      lib.elem relative sourceFiles
      || lib.any (dir: relative == dir || lib.hasPrefix "${dir}/" relative) sourceDirs
      || relative == "nix";
  };

  npmDeps = importNpmLock {
    npmRoot = ../.;
    packageSourceOverrides = lib.mapAttrs fetchLocked lockedPackages;
  };
  npmConfigHook = importNpmLock.npmConfigHook;

  # dist/ is built by npmBuildHook already: npm pack (which lists what gets
  # installed) need not run package.json's prepack again.
  npmPackFlags = [ "--ignore-scripts" ];

  nativeBuildInputs = [ makeWrapper ];

  # bin/bento is npmInstallHook's wrapper (node and dist/main.js).
  postInstall = ''
    wrapProgram "$out/bin/bento" --prefix PATH : ${lib.escapeShellArg (lib.makeBinPath runtimeTools)}
  '';

  passthru = { inherit runtimeTools; };

  meta = {
    inherit (packageJson) description;
    license = lib.licenses.bsd2;
    mainProgram = "bento";
    platforms = lib.platforms.linux;
  };
}
