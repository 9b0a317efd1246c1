# shellcheck shell=sh
# The bento client: the SELF_UPDATE flag (a flake's inputs updated on the machine).

# SELF_UPDATE flag: with nothing new from the server, update the flake inputs
# and rebuild when any of them changed.
self_update() {
	cd "$BENTO_DIR" || return 1
	cp flake.lock "$STATE_DIR/flake.lock.before" || return 1
	start_log
	say "no new configuration; updating the flake inputs (SELF_UPDATE)"
	if ! nix --extra-experimental-features 'nix-command flakes' flake update >> "$LOG" 2>&1; then
		warn "updating the flake inputs failed:"
		tail -n 20 "$LOG" >&2
		return 1
	fi
	if cmp -s flake.lock "$STATE_DIR/flake.lock.before"; then
		say "no update required (flake inputs unchanged)"
		return 0
	fi
	git -C "$BENTO_DIR" add flake.lock
	build_and_switch autoupdate
	built=$?
	report || return 1
	[ "$built" -eq 0 ] || return 1
	reboot_if_needed
	return 0
}
