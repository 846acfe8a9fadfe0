#!/bin/sh
set -e
# deb: "remove" (not "upgrade"); rpm: 0 packages left.
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now sollwert >/dev/null 2>&1 || true
	fi
	;;
esac
