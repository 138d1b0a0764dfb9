#!/bin/sh
# linnet prerm: stop the service before its binary goes away.
set -e

case "$1" in
remove | deconfigure)
	if [ -d /run/systemd/system ]; then
		systemctl stop linnet.service || true
	fi
	systemctl disable linnet.service >/dev/null 2>&1 || true
	;;
esac
exit 0
