#!/bin/sh
# linnet postinst: the system user, the data directory, the service.
set -e

case "$1" in
configure)
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
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	# Enabled and started like any Debian service; `systemctl disable --now
	# linnet` opts out. Without a running systemd (a chroot, an image build)
	# only the enablement symlink is made.
	if [ -z "$2" ]; then
		systemctl enable linnet.service >/dev/null 2>&1 || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl restart linnet.service || true
	fi
	;;
esac
exit 0
