#!/bin/sh
# deb "purge" removes what the package made: the configuration directory,
# the user and, unless SOLLWERT_KEEP_DATA=1, the data (the store with all
# history). rpm has no purge: an erase keeps data, config and user.
set -e
case "$1" in
purge)
	rm -rf /etc/sollwert
	if [ "${SOLLWERT_KEEP_DATA:-0}" != 1 ]; then
		rm -rf /var/lib/sollwert
	else
		echo "sollwert: keeping /var/lib/sollwert (SOLLWERT_KEEP_DATA=1)" >&2
	fi
	if getent passwd sollwert >/dev/null; then
		userdel sollwert >/dev/null 2>&1 || true
	fi
	if getent group sollwert >/dev/null; then
		groupdel sollwert >/dev/null 2>&1 || true
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
