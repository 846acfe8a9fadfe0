#!/bin/sh
# The system user the daemon runs as; its home is the data directory.
set -e
if ! getent group sollwert >/dev/null; then
	groupadd --system sollwert
fi
if ! getent passwd sollwert >/dev/null; then
	useradd --system --gid sollwert --home-dir /var/lib/sollwert --no-create-home \
		--shell /usr/sbin/nologin --comment "sollwert daemon" sollwert
fi
