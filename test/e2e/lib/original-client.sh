#!/bin/sh
# The SFTP exchanges of a client installed by the original bento scripts
# (rapenne-s/bento: the update.sh and bootstrap.sh it generated), replayed
# against a chroot published by this project (docs/protocol.md §8: such a client must
# keep working). Run on a simulated machine (machine.sh), as root: like the
# original, it uses root's default key and known_hosts and plain piped sftp.
# The original names no port (it relies on 22 or ssh_config); -P stands for that.
#
#   original-client.sh NAME HOST PORT poll        ls -l last_change_date (the update check)
#   original-client.sh NAME HOST PORT fetch       cd config; get -R . into /var/bento (bootstrap)
#   original-client.sh NAME HOST PORT put FILE LOGNAME    put FILE /logs/LOGNAME (the report)
#   original-client.sh NAME HOST PORT update      the original update.sh on a new state: fetch
#                                                 /config/bootstrap.sh and run it, then remember the state
set -u
name=$1
host=$2
port=$3
mode=$4
cd /var/bento || exit 5
case $mode in
poll)
	echo "ls -l last_change_date" | sftp -oConnectTimeout=5 -P "$port" "$name@$host"
	;;
fetch)
	printf '%s\n' "cd config" "get -R ." | sftp -oConnectTimeout=5 -r -P "$port" "$name@$host:"
	;;
put)
	echo "put $5 /logs/$6" | sftp -oConnectTimeout=5 -P "$port" "$name@$host:"
	;;
update)
	state=$(echo "ls -l last_change_date" | sftp -oConnectTimeout=5 -P "$port" "$name@$host") || {
		echo "There is certainly a network problem with $host"
		exit 1
	}
	if [ "$state" = "$(cat .state 2> /dev/null)" ]; then
		echo "no update required"
		exit 0
	fi
	echo "update required"
	sftp -oConnectTimeout=5 -P "$port" "$name@$host:/config/bootstrap.sh" . || exit 1
	/bin/sh bootstrap.sh
	status=$?
	echo "$state" > /var/bento/.state
	exit "$status"
	;;
*)
	echo "original-client.sh: unknown mode $mode" >&2
	exit 2
	;;
esac
