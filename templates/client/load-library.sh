# shellcheck shell=sh
# How update.sh finds the shared code it runs (docs/protocol.md §4): the
# library whose SHA-256 is BENTO_LIBRARY_SHA256, the one this script was
# generated with, and no other, so that a machine never runs its settings
# with another version's code (a library newer or older than the script, a
# truncated one). Looked for first where the installation keeps it under
# its digest until the next update.sh is in place (install_config), then
# beside this script (/var/bento/bento-client.sh, installed with the
# configuration). Used before the library sets anything: plain commands only.
load_library() {
	case $0 in
	*/*) beside=${0%/*} ;;
	*) beside=. ;;
	esac
	for library in "/var/bento/.bento/client/$BENTO_LIBRARY_SHA256.sh" "$beside/bento-client.sh"; do
		[ -f "$library" ] || continue
		digest=$(sha256sum < "$library") || continue
		[ "${digest%% *}" = "$BENTO_LIBRARY_SHA256" ] || continue
		# shellcheck source=/dev/null # the library, checked just above
		. "$library"
		return 0
	done
	printf 'bento: %s\n' "no bento-client.sh with SHA-256 $BENTO_LIBRARY_SHA256 beside $0 nor in /var/bento/.bento/client/ (the library this update.sh was generated with); nothing was changed. Run this machine's bootstrap.sh again to install both." >&2
	exit 1
}
