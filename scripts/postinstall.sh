#!/bin/sh
# linnet postinst: the system user, the data directory, the service.
# The service handling is what dh_installsystemd generates: enabled on the
# first install, left disabled if the admin disabled it, started (or
# restarted on upgrade) when systemd runs, subject to policy-rc.d.
set -e

case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
	if ! getent group linnet >/dev/null; then
		groupadd --system linnet
	fi
	if ! getent passwd linnet >/dev/null; then
		useradd --system --gid linnet --home-dir /var/lib/linnet --no-create-home \
			--shell /usr/sbin/nologin --comment "linnet edge inference daemon" linnet
	fi
	# systemd's StateDirectory= would create it at start; creating it here
	# lets the CLI use the store before the first start.
	install -d -o linnet -g linnet -m 0750 /var/lib/linnet

	# deb-systemd-helper comes with init-system-helpers, essential on Debian.
	deb-systemd-helper unmask linnet.service >/dev/null || true
	if deb-systemd-helper --quiet was-enabled linnet.service; then
		deb-systemd-helper enable linnet.service >/dev/null || true
	else
		deb-systemd-helper update-state linnet.service >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		action=start
		[ -z "$2" ] || action=restart
		deb-systemd-invoke "$action" linnet.service >/dev/null || true
	fi
	;;
esac
exit 0
