# shellcheck shell=sh
# The bento client: values read from the server (health.conf, narinfos,
# the published system), checked before the shell computes with them or
# shows them.

# Whether $1 is a plain decimal number of at most $2 digits: digits only, no
# leading zero (the shell reads 08 as octal: "Illegal number", and the run
# ends with no log), short enough that the shell's 64-bit arithmetic cannot
# overflow with it (no sign: none of these is negative).
plain_number() {
	case $1 in
	'' | *[!0-9]* | 0?*) return 1 ;;
	esac
	[ "${#1}" -le "$2" ]
}

# $1 as a message may show it: its first 80 characters, anything but
# printable ASCII as '?' (a server's text never reaches a terminal raw).
shown() {
	printf '%s' "$1" | head -c 80 | tr -c '[:graph:] ' '?'
}
