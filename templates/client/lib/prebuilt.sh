# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154 # shares the run's state with switch.sh and logs.sh (GENERATION_BEFORE, SWITCHED, SWITCH_LOG; queued)
# The bento client, prebuilt mode (docs/protocol.md §11): the machine downloads the system the
# server built, from the binary cache published with the configuration,
# imports it with every signature checked, and switches to it. Nothing is
# evaluated or built here: no nixos-rebuild, nix build or nix-instantiate.

# Whether the downloaded configuration is for a prebuilt system.
prebuilt_configuration() {
	PREBUILT=$(downloaded_setting BENTO_PREBUILT "$BENTO_PREBUILT")
	[ "$PREBUILT" = 1 ]
}

# Whether $1 is a store path as Nix writes one: /nix/store/, a hash of 32
# characters of Nix's base32, '-', a name of the characters Nix allows.
is_store_path() {
	case $1 in
	/nix/store/*) ;;
	*) return 1 ;;
	esac
	path_base=${1#/nix/store/}
	path_hash=${path_base%%-*}
	case $path_base in
	*/* | *[!0-9A-Za-z+._?=-]*) return 1 ;;
	esac
	case $path_hash in
	*[!0-9a-df-np-sv-z]*) return 1 ;;
	esac
	[ "${#path_hash}" -eq 32 ] && [ "${#path_base}" -gt 33 ]
}

# Splits the bundle of narinfos ($1/narinfos, empty lines between them)
# into <hash>.narinfo files, as Nix reads a file:// cache, and lists every
# store path ($1/paths) and the NAR of each ($1/index: @<hash> <url> <size>).
# What is wrong, if anything, in NARINFO_PROBLEM.
# Shell built-ins only: a closure has thousands of paths.
split_narinfos() {
	dir=$1
	: > "$dir/paths"
	: > "$dir/index"
	file='' hash='' url='' size='' store_path='' NARINFO_PROBLEM=''
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		'')
			end_narinfo || return 1
			continue
			;;
		'StorePath: '*)
			end_narinfo || return 1
			store_path=${line#StorePath: }
			if ! is_store_path "$store_path"; then
				NARINFO_PROBLEM="StorePath $(shown "$store_path") is not a store path"
				return 1
			fi
			hash=${store_path#/nix/store/}
			hash=${hash%%-*}
			file=$dir/$hash.narinfo
			: > "$file"
			printf '%s\n' "$store_path" >> "$dir/paths"
			;;
		'URL: '*) url=${line#URL: } ;;
		'FileSize: '*) size=${line#FileSize: } ;;
		esac
		if [ -z "$file" ]; then
			NARINFO_PROBLEM="a line before the first StorePath: $(shown "$line")"
			return 1
		fi
		printf '%s\n' "$line" >> "$file"
	done < "$dir/narinfos"
	end_narinfo
}

# The end of one narinfo: its line in the index, once its NAR is known to
# be a file under nar/ and its size a number the shell can add up.
end_narinfo() {
	[ -n "$file" ] || return 0
	case ${url#nar/} in
	"$url" | '' | .* | *..* | */* | *[!0-9a-z.]*)
		NARINFO_PROBLEM="the narinfo of ${store_path##*/} has URL '$(shown "$url")', not nar/<file>"
		return 1
		;;
	esac
	if ! plain_number "$size" 15; then
		NARINFO_PROBLEM="the narinfo of ${store_path##*/} has FileSize '$(shown "$size")': not a number of at most 15 digits without a leading zero"
		return 1
	fi
	printf '@%s %s %s\n' "$hash" "$url" "$size" >> "$dir/index"
	file='' hash='' url='' size=''
}

# Downloads, over the connection the configuration came by, what the
# machine needs of the prebuilt system of cache directory $1: the system's
# store path, its pin and every narinfo of its closure (small files), then
# the NARs of only the store paths not valid here. Sets NEW_SYSTEM (the
# system the cache names) and PIN. Returns 1 when the transfer failed
# (retried on the next run), 2 when what arrived is not this
# configuration's cache (said in the log).
download_prebuilt() {
	cache=$1
	dir=$STATE_DIR/cache
	rm -rf "$dir"
	mkdir -p "$dir/nar" || return 1
	{
		# A cache without a pin (a bento before it) is refused below, not
		# taken for a failed transfer and retried in silence.
		printf -- '-get %s/pin %s/pin\n' "$cache" "$dir"
		printf 'get %s/system %s/system\n' "$cache" "$dir"
		if [ -z "$CACHE_URL" ]; then
			printf 'get %s/narinfos.gz %s/narinfos.gz\n' "$cache" "$dir"
			printf 'get %s/nix-cache-info %s/nix-cache-info\n' "$cache" "$dir"
		fi
	} > "$STATE_DIR/batch"
	if ! sftp_session "$STATE_DIR/batch"; then
		warn "downloading the prebuilt system failed; it will be retried on the next run:"
		show_sftp_output
		return 1
	fi
	NEW_SYSTEM=$(head -c 1024 "$dir/system")
	if ! is_store_path "$NEW_SYSTEM"; then
		refuse "the published system is not a store path: $(shown "$NEW_SYSTEM")"
		return 2
	fi
	# The pin: a store path named after the configuration just verified
	# (its manifest digest), whose content, signed, is the system it must run.
	pin_name=bento-system-$(cut -c 1-64 "$STATE_DIR/remote-state")
	if [ ! -f "$dir/pin" ]; then
		refuse "the cache holds no pin (the system signed for this configuration): published by a bento older than this machine's? deploy again on the server"
		return 2
	fi
	PIN=$(head -c 1024 "$dir/pin")
	if ! is_store_path "$PIN" || [ "${PIN#/nix/store/*-}" != "$pin_name" ]; then
		refuse "the cache's pin $(shown "${PIN##*/}") is not the one signed for this configuration ($pin_name): another configuration's cache?"
		return 2
	fi
	[ -z "$CACHE_URL" ] || return 0
	if ! gzip -dc "$dir/narinfos.gz" > "$dir/narinfos" 2>> "$LOG"; then
		refuse "the published narinfos of $(basename "$NEW_SYSTEM") are not gzip"
		return 2
	fi
	if ! split_narinfos "$dir"; then
		refuse "the published narinfos of $(basename "$NEW_SYSTEM") cannot be read: $NARINFO_PROBLEM"
		return 2
	fi
	if ! grep -qxF -e "$PIN" "$dir/paths"; then
		refuse "the published narinfos hold none of $pin_name, the system signed for this configuration: they are another configuration's (an older cache copied over this one?)"
		return 2
	fi
	# The store paths that are not valid here, and their NARs.
	if ! xargs nix-store --check-validity --print-invalid < "$dir/paths" > "$dir/missing" 2>> "$LOG"; then
		warn "nix-store cannot tell which store paths are here:"
		tail -n 5 "$LOG" >&2
		return 2
	fi
	sed -n 's|^/nix/store/\([0-9a-z]\{32\}\)-.*|@\1 |p' "$dir/missing" > "$dir/wanted-hashes"
	grep -F -f "$dir/wanted-hashes" "$dir/index" | cut -d ' ' -f 2- | sort -u > "$dir/wanted" || true
	count=0 bytes=0
	: > "$STATE_DIR/batch"
	while read -r url size; do
		printf 'get %s/%s %s/%s\n' "$cache" "$url" "$dir" "$url" >> "$STATE_DIR/batch"
		count=$((count + 1))
		# Each size has at most 15 digits (end_narinfo): the sum stays far from overflowing.
		bytes=$((bytes + size))
		if [ "$bytes" -gt 999999999999999 ]; then
			refuse "the NARs of $(basename "$NEW_SYSTEM") add up to more than 10^15 bytes (FileSize of the published narinfos)"
			return 2
		fi
	done < "$dir/wanted"
	note "$(basename "$NEW_SYSTEM"): downloading $count NAR files ($bytes bytes) for the $(grep -c . "$dir/missing") of $(grep -c . "$dir/paths") store paths not here"
	[ -s "$STATE_DIR/batch" ] || return 0
	if ! sftp_session "$STATE_DIR/batch"; then
		warn "downloading the prebuilt system failed; it will be retried on the next run:"
		show_sftp_output
		return 1
	fi
	return 0
}

# Imports from the download (or from CACHE_URL), every signature checked
# against the one key this configuration trusts; never --no-check-sigs. A
# NAR or narinfo that does not verify is refused, and nothing is switched.
# The pin first: once verified, it must name the system the cache does (an
# older signed system copied into this configuration's cache is refused
# here); then that system.
import_prebuilt() {
	if [ -n "$CACHE_URL" ]; then
		from=$CACHE_URL
	else
		from=file://$STATE_DIR/cache
	fi
	note "importing $(basename "$NEW_SYSTEM") from $from, signed by ${CACHE_KEY%%:*}"
	copy_signed "$from" "$PIN" || return 1
	signed=$(head -c 1024 "$PIN" 2> /dev/null)
	if [ "$signed" != "$NEW_SYSTEM" ]; then
		refuse "the cache names $(basename "$NEW_SYSTEM") as the system, but the one signed for this configuration is $(shown "${signed##*/}"): refused (an older cache copied over this one?)"
		return 1
	fi
	copy_signed "$from" "$NEW_SYSTEM"
}

# nix copy --from $1 of store path $2 and its closure, signed by CACHE_KEY.
copy_signed() {
	nix --extra-experimental-features nix-command copy --from "$1" \
		--option trusted-public-keys "$CACHE_KEY" --option require-sigs true \
		--option narinfo-cache-negative-ttl 0 \
		"$2" >> "$LOG" 2>&1
}

# Switches to the imported system, as nixos-rebuild switch does: the system
# profile set to it (nix-env -p ... --set), then its switch-to-configuration;
# then the health gate, as after any switch. Returns as build_and_switch.
switch_prebuilt() {
	if [ "$NEW_SYSTEM" = "$(current_system)" ]; then
		say "$(basename "$NEW_SYSTEM") is already running"
		queue_log success "$NEW_SYSTEM"
		return 0
	fi
	GENERATION_BEFORE=$(generation_of "$(readlink "$PROFILE")")
	record_failed_units "$STATE_DIR/failed-units.before"
	say "switching to $(basename "$NEW_SYSTEM")"
	if ! nix-env -p "$PROFILE" --set "$NEW_SYSTEM" >> "$LOG" 2>&1 || out_of_space ||
		[ "$(readlink -f "$PROFILE")" != "$NEW_SYSTEM" ]; then
		if out_of_space; then
			no_space "setting the system profile to $(basename "$NEW_SYSTEM")" "$LOG"
			return 3
		fi
		warn "setting the system profile to $(basename "$NEW_SYSTEM") failed:"
		tail -n 20 "$LOG" >&2
		queue_log failure "$(current_system)"
		return 1
	fi
	activate_system "$NEW_SYSTEM" switch >> "$LOG" 2>&1
	judge_switch $? "$NEW_SYSTEM" || return $?
	keep_if_healthy "$NEW_SYSTEM" success
}

# The prebuilt cycle for the configuration just downloaded: download,
# import (signatures checked), install the configuration, switch, report.
# A download or an import that fails changes nothing here and is retried on
# the next run; one that does not verify is reported as a failure; one
# that fails for lack of space is reported once, as no_space does.
prebuilt_update() {
	CACHE_KEY=$(downloaded_setting BENTO_CACHE_KEY "$BENTO_CACHE_KEY")
	CACHE_URL=$(downloaded_setting BENTO_CACHE_URL "$BENTO_CACHE_URL")
	cache_dir=.cache-$(cut -c 1-16 "$STATE_DIR/remote-state")
	start_log
	download_prebuilt "$cache_dir"
	downloaded=$?
	close_connection
	if [ "$downloaded" -eq 1 ]; then
		if lacks_space "$STATE_DIR/sftp.out"; then
			rm -rf "$STATE_DIR/cache"
			no_space "downloading the prebuilt system" "$STATE_DIR/sftp.out"
			report
		fi
		return 1
	fi
	if [ "$downloaded" -ne 0 ] || ! import_prebuilt; then
		rm -rf "$STATE_DIR/cache"
		if out_of_space; then
			no_space "importing the prebuilt system" "$LOG"
			report
			return 1
		fi
		warn "the prebuilt system does not verify: nothing was switched; it will be downloaded again on the next run:"
		tail -n 20 "$LOG" >&2
		queue_log failure "$(current_system)"
		report
		return 1
	fi
	rm -rf "$STATE_DIR/cache"
	install_or_report || return 1
	switch_prebuilt
	finish_attempt $?
}
