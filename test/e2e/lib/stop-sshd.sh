#!/bin/sh
# Stops the sshd of an e2e suite and waits until its port is closed (a
# killed daemon may linger as a zombie until init reaps it, so the port is
# what counts). Used by e2e.bash and by stand-in hooks that take the server
# away in the middle of a client run.
#
#   stop-sshd.sh SERVER_DIR     (the suite's $E2E_SERVER)
set -u
server=${1:?usage: stop-sshd.sh SERVER_DIR}
port=$(sed -n 's/^Port //p' "$server/sshd_config")
# Its own address: another sshd may listen on the same port elsewhere (25-failover.bats).
address=$(sed -n 's/^ListenAddress //p' "$server/sshd_config")
pid=$(cat "$server/sshd.pid" 2> /dev/null) || exit 0
kill "$pid" 2> /dev/null
i=0
while [ -n "$(ss -Hltn "src ${address:-*}:$port")" ]; do
	i=$((i + 1))
	if [ "$i" -ge 100 ]; then
		echo "stop-sshd.sh: sshd (pid $pid) still listens on port $port" >&2
		exit 1
	fi
	sleep 0.05
done
rm -f "$server/sshd.pid"
echo "e2e: the server is gone"
