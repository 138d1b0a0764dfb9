#!/bin/sh
# linnet postrm: purge removes the data (model store), the configuration
# directory and the system user; remove keeps them.
set -e

case "$1" in
purge)
	rm -rf /var/lib/linnet /var/lib/private/linnet /etc/linnet
	if getent passwd linnet >/dev/null; then
		userdel linnet || true
	fi
	if getent group linnet >/dev/null; then
		groupdel linnet || true
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
