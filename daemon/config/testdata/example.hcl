# A minimal configuration: scan loopback every five minutes and hold it to
# an expectation of which ports may and must be open.
data_dir = "./data"
api { listen = "127.0.0.1:7400" }
job "loopback" {
  source   = "nmap"
  schedule = "@every 5m"
  timeout  = "2m"
  targets  = ["127.0.0.1"]
  ports    = "1-1024,8000-9000"
}
expect "loopback-services" {
  cidrs         = ["127.0.0.0/8"]
  tcp           = ["22", "8000-8100"]   # allowed open ports; any other open port in scope is a deviation
  required_tcp  = ["22"]                # must be open; closed in scope is a deviation
  unknown_hosts = "warning"             # a host in scope that no earlier scan knew
  severity      = "critical"
}
