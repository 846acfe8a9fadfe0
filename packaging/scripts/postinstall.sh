#!/bin/sh
set -e
install -d -o sollwert -g sollwert -m 0750 /var/lib/sollwert
chgrp sollwert /etc/sollwert/sollwert.hcl && chmod 0640 /etc/sollwert/sollwert.hcl
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts a running daemon on the new binary; a first
	# install leaves starting it to the admin, after editing the config.
	if systemctl is-active --quiet sollwert; then
		systemctl restart sollwert || true
	fi
fi
