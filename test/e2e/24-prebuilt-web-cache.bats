#!/usr/bin/env bats
# Prebuilt mode past one server (docs/protocol.md §11, docs/prebuilt.md):
# with CACHE_STORE and CACHE_URL, deploy copies the signed closures
# into a file:// binary cache that a real web server from Debian (nginx)
# serves on 127.0.0.1, and the machines substitute from its URL; their
# chroots carry only the small files.

load lib/e2e

setup_file() {
	command -v nginx > /dev/null 2>&1 || PATH=$PATH:/usr/sbin
	command -v nginx > /dev/null 2>&1 || fail "nginx is missing (sh scripts/setup.sh installs it)"
	E2E_NOLOCALBUILD=0 e2e_setup_suite p:prebuilt
	export P WEB WEB_PORT
	P=$(sys p)
	WEB=$E2E_BASE/web
	mkdir -p "$WEB/cache" "$WEB/tmp"
	WEB_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
	cat > "$WEB/nginx.conf" <<-EOF
		# nginx of the e2e suite $E2E_ID: serves the binary cache read-only.
		worker_processes 1;
		pid $WEB/nginx.pid;
		error_log $WEB/error.log;
		events { worker_connections 64; }
		http {
		  log_format bento '\$request_method \$uri \$status \$body_bytes_sent';
		  access_log $WEB/access.log bento;
		  client_body_temp_path $WEB/tmp/body;
		  proxy_temp_path $WEB/tmp/proxy;
		  fastcgi_temp_path $WEB/tmp/fastcgi;
		  uwsgi_temp_path $WEB/tmp/uwsgi;
		  scgi_temp_path $WEB/tmp/scgi;
		  types { text/x-nix-narinfo narinfo; }
		  default_type application/octet-stream;
		  server {
		    listen 127.0.0.1:$WEB_PORT;
		    root $WEB/cache;
		    location / { limit_except GET { deny all; } }
		  }
		}
	EOF
	# Marked like the machines' processes: cleanup.sh stops it whatever happens.
	env BENTO_E2E_RUN="$E2E_ID" nginx -c "$WEB/nginx.conf" -e "$WEB/error.log" || fail "nginx did not start:" "$(cat "$WEB/error.log")"
	printf '%s\n' "CACHE_STORE=file://$WEB/cache" "CACHE_URL=http://127.0.0.1:$WEB_PORT" >> "$E2E_FLEET/config.sh"
	e2e_deploy_or_fail
}

teardown_file() {
	if [ -f "${WEB:-/nonexistent}/nginx.pid" ]; then nginx -c "$WEB/nginx.conf" -e "$WEB/error.log" -s quit 2> /dev/null || true; fi
	e2e_teardown_suite
}

measured() {
	printf '# measured: %s\n' "$*" >&3
}

# Requests nginx answered since the last call: "<method> <uri> <status> <bytes>".
requests() {
	local seen=0
	[ -f "$WEB/seen" ] && seen=$(cat "$WEB/seen")
	tail -n +$((seen + 1)) "$WEB/access.log"
	wc -l < "$WEB/access.log" > "$WEB/seen"
}

@test "the closures and pins go to the web server's cache, signed; the chroot holds only the system's store path and its pin" {
	system=/nix/store/$(e2e_expected "$P")
	cache=$E2E_CHROOT/$P/.cache-$(cut -c 1-16 "$E2E_CHROOT/$P/last_change_date")
	assert_eq "$(ls -A "$cache")" "$(printf 'pin\nsystem')" "the chroot's cache"
	assert_eq "$(cat "$cache/system")" "$system" "its system"
	pin=$(cat "$cache/pin")
	assert_match "$pin" "^/nix/store/[0-9a-z]{32}-bento-system-$(cut -c 1-64 "$E2E_CHROOT/$P/last_change_date")\$"
	public=$(cat "$E2E_BASE/signing/key.pub")
	for path in $(nix-store -qR "$system") "$pin"; do
		narinfo=$WEB/cache/$(basename "$path" | cut -c 1-32).narinfo
		grep -q "^Sig: ${public%%:*}:" "$narinfo" || fail "$narinfo is not signed by the server's key"
	done
	assert_contains "$(cat "$E2E_CHROOT/$P/config/update.sh")" "BENTO_CACHE_URL=http://127.0.0.1:$WEB_PORT"
	# The web server's cache is not under CHROOT_DIR: nothing of it in the pool.
	[ -z "$(find "$E2E_CHROOT/.bento-cache" -name '*.narinfo' -o -name '*.nar*' -type f)" ] || fail "NARs in the chroot's pool"
}

@test "a machine with an empty store substitutes its system from the web server, then only what a one-package change needs" {
	requests > /dev/null
	run -0 e2e_machine "$P" bootstrap
	expected=$(e2e_expected "$P")
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	assert_eq "$(cat "$E2E_MACHINES/$P/run/switch-to-configuration.record")" "switch-to-configuration /nix/store/$expected switch NIXOS_INSTALL_BOOTLOADER=0" "switch-to-configuration calls"
	record=$(e2e_record "$P")
	assert_not_contains "$record" "FORBIDDEN"
	assert_contains "$record" "copy --from http://127.0.0.1:$WEB_PORT --option trusted-public-keys $(cat "$E2E_BASE/signing/key.pub")"
	first=$(requests)
	# The closure's and the pin's.
	assert_eq "$(grep -c ' /nar/' <<< "$first")" "$(($(nix-store -qR "/nix/store/$expected" | wc -l) + 1))" "NARs fetched from the web server"
	! grep -qv ' 200 ' <<< "$first" || fail "requests that failed:" "$first"
	first_bytes=$(grep ' /nar/' <<< "$first" | awk '{ s += $4 } END { print s }')

	e2e_bump_package "$P"
	e2e_deploy_or_fail
	expected=$(e2e_expected "$P")
	e2e_clear_record "$P"
	run -0 e2e_machine "$P"
	assert_eq "$(e2e_profile "$P")" "/nix/store/$expected" "system profile"
	second=$(requests)
	# pkg-b's, the system's and the new configuration's pin.
	assert_eq "$(grep -c ' /nar/' <<< "$second")" 3 "NARs fetched for a one-package change"
	second_bytes=$(grep ' /nar/' <<< "$second" | awk '{ s += $4 } END { print s }')
	measured "from the web server: first update $first_bytes bytes of NARs, after a one-package change $second_bytes"
	assert_eq "$(e2e_status_state "$P")" up-to-date "bento status"
}
