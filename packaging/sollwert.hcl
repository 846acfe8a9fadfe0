# /etc/sollwert/sollwert.hcl: sollwert's configuration. Package upgrades
# never overwrite it. Reference: /usr/share/doc/sollwert/configuration.md.
# Check a change with `sollwert rules validate --config FILE`, then
# `systemctl reload sollwert`.

data_dir = "/var/lib/sollwert"

# The API and /v1/check listen on loopback only until you decide otherwise.
api { listen = "127.0.0.1:7400" }

log { level = "info" }

# A first job: this machine's own loopback, hourly. Replace the targets
# and the expectation with your networks.
job "loopback" {
  source   = "nmap"
  schedule = "@every 1h"
  timeout  = "10m"
  targets  = ["127.0.0.1"]
  ports    = "1-1024"
  skip_host_discovery = true
}

expect "loopback" {
  cidrs    = ["127.0.0.0/8"]
  tcp      = ["22"]
  severity = "warning"
}
