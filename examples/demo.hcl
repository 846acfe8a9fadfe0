# The demo: scan a port range on 127.0.0.1 every 5 seconds and hold it to
# "only 18022 may be open". examples/demo.sh opens 18022 and an unexpected
# 18080 on loopback, and closes 18080 again. Nothing outside 127.0.0.0/8 is
# ever scanned.
data_dir = "./data"

api { listen = "127.0.0.1:7400" }

job "loopback" {
  source              = "nmap"
  schedule            = "@every 5s"
  timeout             = "30s"
  targets             = ["127.0.0.1"]
  ports               = "18000-18100"
  skip_host_discovery = true
}

expect "loopback-services" {
  cidrs         = ["127.0.0.0/8"]
  tcp           = ["18022"]   # the one port that may be open
  required_tcp  = ["18022"]   # and must be
  unknown_hosts = "warning"
  severity      = "critical"
}
