#!/bin/sh
# linnet prerm: stop the service before its binary goes away.
set -e

if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop linnet.service >/dev/null || true
fi
exit 0
