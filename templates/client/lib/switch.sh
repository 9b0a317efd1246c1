# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154 # shares the run's state with logs.sh (SWITCH_LOG; queued)
# The bento client: building and switching to a configuration, undoing a
# switch that failed, rolling back, rebooting into a new kernel.

rebuild_config() {
	if [ "$BENTO_FLAKE" = 1 ]; then
		rebuild "$1" --flake "$BENTO_DIR#$BENTO_NAME"
	else
		rebuild "$1" --no-flake -I "nixos-config=$BENTO_DIR/configuration.nix"
	fi
}

# Builds the configuration in /var/bento and switches to it when it differs
# from the running system. Queues the log: $1 on success, else failure.
# Returns 0 on success, 1 on failure, 3 when it failed for lack of space
# (no_space: the configuration is to be tried again).
build_and_switch() {
	cd "$STATE_DIR" || return 1
	say "building the configuration of $BENTO_NAME"
	if ! rebuild_config build >> "$LOG" 2>&1 || out_of_space; then
		if out_of_space; then
			no_space "building the configuration" "$LOG"
			return 3
		fi
		warn "the build failed; this configuration is not retried until a new one is published:"
		tail -n 20 "$LOG" >&2
		queue_log failure "$(current_system)"
		return 1
	fi
	new_system=$(readlink -f "$STATE_DIR/result")
	if [ "$new_system" = "$(current_system)" ]; then
		say "$(basename "$new_system") is already running"
		queue_log "$1" "$new_system"
		return 0
	fi
	profile_before=$(readlink "$PROFILE")
	GENERATION_BEFORE=$(generation_of "$profile_before")
	record_failed_units "$STATE_DIR/failed-units.before"
	say "switching to $(basename "$new_system")"
	rebuild_config switch >> "$LOG" 2>&1
	judge_switch $? "$new_system" || return $?
	if [ "$(readlink "$PROFILE")" = "$profile_before" ]; then
		warn "the switch left the system profile unchanged; counted as a failure"
		queue_log failure "$(current_system)"
		return 1
	fi
	keep_if_healthy "$new_system" "$1"
}

# After a switch to $2 that exited $1: whether it counts. 0: the new system
# runs (whatever the exit status said: runs_after_failed_switch); 1: the
# switch failed, put back (undo_failed_switch) and its failure log queued;
# 3: it failed for lack of space (no_space: reported once, not remembered).
judge_switch() {
	if { [ "$1" -ne 0 ] || out_of_space; } && ! runs_after_failed_switch "$1" "$2"; then
		undo_failed_switch
		if out_of_space; then
			no_space "switching to $(basename "$2")" "$LOG"
			return 3
		fi
		warn "the switch failed:"
		tail -n 20 "$LOG" >&2
		queue_log failure "$(current_system)"
		return 1
	fi
	return 0
}

# The health gate of the system just switched to ($1): healthy, its log
# (result $2) is queued and remembered as the switch's (SWITCH_LOG, which a
# lost server replaces by a rollback's); unhealthy, it is rolled back and a
# rollback log says which check failed. 0: kept; 1: rolled back.
keep_if_healthy() {
	SWITCHED=1
	if ! health_gate "$1"; then
		warn "the new system is not healthy ($HEALTH_PROBLEM): rolling back"
		printf '\nbento: the new system is not healthy: %s; rolled back\n' "$HEALTH_PROBLEM" >> "$LOG"
		roll_back
		# Back on the system that was running: no reachability check to make for it.
		SWITCHED=0
		queue_log rollback "$(current_system)"
		return 1
	fi
	queue_log "$2" "$1" && SWITCH_LOG=$queued
	return 0
}

# After a switch that reported an error ($1: its exit status; 0 when it
# only said "No space left"), whether the new system ($2) runs now: that is
# what decides, not the status. switch-to-configuration (nixpkgs' Perl one,
# and switch-to-configuration-ng at the end of do_system_switch:
# pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs) exits 4 when
# any unit is failed after the switch, even one that had failed before it,
# and it does so after the activation; nixos-rebuild then exits 1
# (pkgs/by-name/ni/nixos-rebuild/nixos-rebuild.sh). A new system that runs
# goes through the health gate and the check of the server like any other
# (kept, or rolled back); the log says which units failed, and whether they
# had failed before the switch. One that does not run: the switch failed.
runs_after_failed_switch() {
	[ -n "$2" ] && [ "$(running_system)" = "$2" ] || return 1
	if [ "$1" -ne 0 ]; then
		note "the switch exited with status $1, but $(basename "$2") runs: the health gate and the check of the server decide whether it stays"
	else
		note "the switch said it had no space left, but $(basename "$2") runs: the health gate and the check of the server decide whether it stays"
	fi
	note_failed_units
	return 0
}

# After a switch that failed with the new system not running: nixos-rebuild
# (pkgs/by-name/ni/nixos-rebuild/nixos-rebuild.sh) and this script's
# prebuilt switch set the system profile before switch-to-configuration
# runs, and that may fail before it activates (installing the boot loader,
# say). Left so, the profile names a system that never ran: a later
# rollback would land on it, and the next boot too once a boot loader is
# installed. So the profile goes back to the generation that ran before
# this switch, the new generation is deleted, and the running system's boot
# loader entries are installed again (switch-to-configuration boot, as
# after a rollback: nixpkgs' systemd-boot-builder lists the profile's
# generations).
undo_failed_switch() {
	[ -n "${GENERATION_BEFORE:-}" ] || return 0
	failed_generation=$(generation_of "$(readlink "$PROFILE")")
	[ -n "$failed_generation" ] && [ "$failed_generation" != "$GENERATION_BEFORE" ] || return 0
	if ! nix-env -p "$PROFILE" --switch-generation "$GENERATION_BEFORE" >> "$LOG" 2>&1; then
		note "the system profile could not be put back on generation $GENERATION_BEFORE (see above): it names generation $failed_generation, which never ran"
		return 1
	fi
	nix-env -p "$PROFILE" --delete-generations "$failed_generation" >> "$LOG" 2>&1
	note "the system profile is back on generation $GENERATION_BEFORE ($(basename "$(readlink -f "$PROFILE")")); generation $failed_generation, which never ran, is deleted"
	if ! activate_system "$(readlink -f "$PROFILE")" boot >> "$LOG" 2>&1; then
		note "installing the boot loader's entries again failed (see above): the boot menu may still list generation $failed_generation"
	fi
	return 0
}

# The generation number of a system profile link's target (system-42-link
# -> 42); nothing when it is not one.
generation_of() {
	generation=${1##*/}
	generation=${generation#system-}
	generation=${generation%-link}
	case $generation in
	'' | *[!0-9]*) ;;
	*) printf '%s\n' "$generation" ;;
	esac
}

# Whether systemd runs this machine (not in a container without it).
have_systemd() {
	[ -d /run/systemd/system ] && command -v systemctl > /dev/null 2>&1
}

# The failed units, one name a line, sorted; nothing without systemd.
record_failed_units() {
	: > "$1"
	have_systemd || return 0
	systemctl --failed --plain --no-legend --no-pager 2> /dev/null | sed -e 's/^[^[:alnum:]]*//' -e 's/[[:space:]].*//' | sort -u > "$1"
}

# Says which units are failed now, each "failed since the switch" or
# "failed before the switch too" (failed-units.before); nothing without systemd.
note_failed_units() {
	record_failed_units "$STATE_DIR/failed-units.now"
	failed=''
	while IFS= read -r unit; do
		if grep -qxF -e "$unit" "$STATE_DIR/failed-units.before" 2> /dev/null; then
			failed="$failed, $unit (failed before the switch too)"
		else
			failed="$failed, $unit (failed since the switch)"
		fi
	done < "$STATE_DIR/failed-units.now"
	[ -z "$failed" ] || note "units failed after the switch: ${failed#, }"
}

# Runs $1/bin/switch-to-configuration $2 as nixos-rebuild does
# (pkgs/by-name/ni/nixos-rebuild/nixos-rebuild.sh in nixpkgs): in a
# transient unit of its own (systemd-run, under nixos-rebuild's unit name,
# so the two never activate at once), where the activation survives this
# service being restarted; directly, with a clean environment, where
# systemd-run does not work.
activate_system() {
	set -- "$1/bin/switch-to-configuration" "$2"
	if command -v systemd-run > /dev/null 2>&1 &&
		systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER=0 --collect --no-ask-password --pipe --quiet \
			--service-type=exec --unit=nixos-rebuild-switch-to-configuration --wait true < /dev/null > /dev/null 2>&1; then
		systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER=0 --collect --no-ask-password --pipe --quiet \
			--service-type=exec --unit=nixos-rebuild-switch-to-configuration --wait "$@" < /dev/null
	else
		env -i LOCALE_ARCHIVE="${LOCALE_ARCHIVE:-}" NIXOS_INSTALL_BOOTLOADER=0 "$@" < /dev/null
	fi
}

# Goes back to the system that ran before this run's switch, as
# nixos-rebuild switch --rollback does (pkgs/by-name/ni/nixos-rebuild/nixos-rebuild.sh:
# the system profile moved back, then that system's switch-to-configuration
# switch, through systemd-run: activate_system), on a prebuilt machine too,
# with two differences:
# - the profile goes back to the generation that ran before the switch
#   (GENERATION_BEFORE), not to whichever is the highest below the current;
# - the generation it leaves is deleted first, before that switch: else a
#   later rollback (`--rollback` takes the highest generation below the
#   current one) could land on this system found bad; and deleted before
#   the switch because switch-to-configuration switch installs the boot
#   loader from the generations that exist then (do_install_bootloader,
#   before the activation: pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs;
#   systemd-boot-builder.py lists `nix-env --list-generations` and removes
#   the entries of the others): the boot menu then no longer offers a
#   generation whose system a garbage collection may delete.
# What decides that it worked is that the previous system runs again (its
# switch-to-configuration exits 4 too when a unit is failed).
roll_back() {
	left=$(generation_of "$(readlink "$PROFILE")")
	if [ -n "${GENERATION_BEFORE:-}" ]; then
		nix-env -p "$PROFILE" --switch-generation "$GENERATION_BEFORE" >> "$LOG" 2>&1
	else
		nix-env -p "$PROFILE" --rollback >> "$LOG" 2>&1
	fi
	back=$(readlink -f "$PROFILE")
	if [ -z "$left" ] || [ "$(generation_of "$(readlink "$PROFILE")")" = "$left" ]; then
		warn "the rollback failed: the system profile did not move back (see the log)"
		printf '\nbento: the rollback failed: the system profile did not move back\n' >> "$LOG"
		return 1
	fi
	nix-env -p "$PROFILE" --delete-generations "$left" >> "$LOG" 2>&1
	activate_system "$back" switch >> "$LOG" 2>&1
	back_status=$?
	if [ "$(running_system)" != "$back" ]; then
		warn "the rollback's switch to $(basename "$back") failed (exit status $back_status; see the log)"
		printf '\nbento: the switch back to %s failed (exit status %s)\n' "$(basename "$back")" "$back_status" >> "$LOG"
		return 1
	fi
	if [ "$back_status" -ne 0 ]; then
		note "the switch back exited with status $back_status, but $(basename "$back") runs again"
		note_failed_units
	fi
	return 0
}

# The REBOOT flag on a poll with nothing new, when the reboot may have had
# to wait after its switch (a window, a slot): the reboot of reboot_when_due.
# Without either, as before, the flag reboots only after a switch.
reboot_on_poll() {
	[ -f "$BENTO_DIR/REBOOT" ] && [ -e "$BOOTED_SYSTEM" ] || return 0
	[ -n "${BENTO_REBOOT_WINDOW:-}" ] || [ "${BENTO_REBOOT_SLOTS:-0}" = 1 ] || return 0
	boot_part_differing "$BOOTED_SYSTEM" "$PROFILE" > /dev/null || return 0
	reboot_when_due
}

# REBOOT flag: after a switch, the reboot of reboot_when_due.
reboot_if_needed() {
	[ -f "$BENTO_DIR/REBOOT" ] || return 0
	[ "$SWITCHED" = 1 ] || return 0
	if [ ! -e "$BOOTED_SYSTEM" ]; then
		warn "REBOOT is set but $BOOTED_SYSTEM is missing; not rebooting"
		return 0
	fi
	reboot_when_due
}

# The generation of the system profile when systemd-boot gave up on it:
# with boot counting, its entry has no tries left
# (nixos-generation-<N>+0-<done>.conf: the Boot Loader Specification's
# counter, which systemd-boot lowers on each boot and systemd-bless-boot
# removes once boot-complete.target is reached). Fails otherwise.
failed_boot_generation() {
	generation=$(generation_of "$(readlink "$PROFILE")")
	[ -n "$generation" ] || return 1
	for entry in "$BOOT_ENTRIES/nixos-generation-$generation+0-"*.conf; do
		[ -e "$entry" ] || continue
		printf '%s\n' "$generation"
		return 0
	done
	return 1
}

# A bad boot undid itself (docs/reboots.md): the profile's generation was
# not blessed and, out of tries, systemd-boot booted an older one, which
# runs now. Reported once per generation, as a rollback log queued for the
# next session (the poll that follows), its header naming the configuration
# that was applied (.bento/state).
report_boot_fallback() {
	[ -e "$BOOTED_SYSTEM" ] || return 0
	failed=$(failed_boot_generation) || return 0
	[ "$(cat "$STATE_DIR/boot-fallback" 2> /dev/null)" != "$failed" ] || return 0
	{
		echo "bento $BENTO_MODE of $BENTO_NAME on $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "protocol: $BENTO_LOG_PROTOCOL"
		echo "configuration: $(head -n 1 "$STATE_DIR/state" 2> /dev/null)"
		echo
		echo "bento: generation $failed ($(basename "$(readlink -f "$PROFILE")")) did not boot healthy: its boot was not blessed (boot-complete.target not reached: bento-boot-health.service or another unit failed, or it did not come up), and out of tries systemd-boot booted $(basename "$(readlink -f "$BOOTED_SYSTEM")"), which runs now"
	} > "$LOG" 2> /dev/null || return 0
	warn "generation $failed did not boot healthy; systemd-boot fell back to the system that runs: reporting a rollback"
	queue_log rollback "$(current_system)" || return 0
	printf '%s\n' "$failed" > "$STATE_DIR/boot-fallback.new" &&
		record_file "$STATE_DIR/boot-fallback.new" "$STATE_DIR/boot-fallback"
	rm -f "$STATE_DIR/boot-fallback.new"
}

# The reboot both paths share, the REBOOT flag's after a switch
# (reboot_if_needed) and the bento-reboot timer's (update.sh reboot,
# reboot_main): when the kernel, initrd or modules of the system profile
# differ from the booted ones, and the reboot window is open, reboot (kexec
# when possible: it skips firmware and boot loader). Outside the window the
# machine waits: its heartbeat says so (reboot-waiting), and the next
# timer, switch or poll (reboot_on_poll) in the window reboots. With
# REBOOT_MAX it also needs a slot it has not used (slot_unused: fetched by
# this run's poll), and remembers the one it uses.
reboot_when_due() {
	if [ ! -e "$BOOTED_SYSTEM" ]; then
		warn "$BOOTED_SYSTEM is missing; not rebooting"
		return 0
	fi
	if ! part=$(boot_part_differing "$BOOTED_SYSTEM" "$PROFILE"); then
		say "kernel, initrd and modules are unchanged: no reboot needed"
		return 0
	fi
	if failed=$(failed_boot_generation); then
		say "the $part changed, but generation $failed did not boot healthy (boot counting): no reboot into it"
		return 0
	fi
	if ! reboot_window_open; then
		say "the $part changed: waiting for the reboot window ($BENTO_REBOOT_WINDOW)"
		return 0
	fi
	if [ "${BENTO_REBOOT_SLOTS:-0}" = 1 ]; then
		if ! slot_unused; then
			say "the $part changed: waiting for a reboot slot (REBOOT_MAX; bento reboots hands them out)"
			return 0
		fi
		# Remembered before the reboot, durably: the heartbeat names it once
		# the machine booted another system (rebooted-with), which frees the
		# slot, and the token is never used twice.
		if ! { printf '%s %s\n' "$token" "$(readlink -f "$BOOTED_SYSTEM")" > "$STATE_DIR/reboot-used.new" &&
			record_file "$STATE_DIR/reboot-used.new" "$STATE_DIR/reboot-used"; }; then
			warn "cannot record the reboot slot used in $STATE_DIR/reboot-used; not rebooting"
			return 0
		fi
		rm -f "$STATE_DIR/reboot-used.new"
	fi
	say "the $part changed: rebooting"
	systemctl kexec || systemctl reboot
	return 0
}
