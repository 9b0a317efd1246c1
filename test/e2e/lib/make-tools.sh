#!/bin/sh
# Makes DIR/<attribute>/bin (and sbin) for the nixpkgs packages that the
# client units put on their PATH (test/fixtures/nixos/stub-pkgs.nix names them
# PKGS_DIR/<attribute>): links to this machine's binaries of the Debian
# packages that provide what the nixpkgs package provides. Nothing else of
# this machine is on a simulated machine's PATH. systemd and nixos-rebuild
# are not made here: the tests give stand-ins for them (a real systemctl
# would act on this machine). The same packages as linkPackages in
# test/helpers/nixos.ts, which the vitest tests use.
#
#   make-tools.sh DIR
set -eu
dir=${1:?usage: make-tools.sh DIR}
# nixpkgs attribute, then the Debian packages that provide its tools.
for spec in coreutils:coreutils findutils:findutils gnugrep:grep gnused:sed \
	openssh:openssh-client git:git gzip:gzip diffutils:diffutils \
	util-linux:util-linux nix:nix-bin jq:jq; do
	attribute=${spec%%:*}
	mkdir -p "$dir/$attribute/bin" "$dir/$attribute/sbin"
	for debian in $(printf '%s\n' "${spec#*:}" | tr ',' ' '); do
		dpkg -L "$debian" | grep -E '^(/usr)?/s?bin/[^/]+$' | while read -r file; do
			case $file in */sbin/*) kind=sbin ;; *) kind=bin ;; esac
			if [ -x "$file" ] && [ ! -d "$file" ]; then ln -sf "$file" "$dir/$attribute/$kind/${file##*/}"; fi
		done
	done
done
