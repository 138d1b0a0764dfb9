#!/bin/sh
# linnet postrm: remove keeps the data (model store), the configuration and
# the system user, and masks the unit until the package returns; purge
# deletes them all.
set -e

case "$1" in
remove)
	deb-systemd-helper mask linnet.service >/dev/null || true
	;;
purge)
	deb-systemd-helper purge linnet.service >/dev/null || true
	deb-systemd-helper unmask linnet.service >/dev/null || true
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
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
