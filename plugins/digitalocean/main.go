// Command sollwert-plugin-digitalocean is sollwert's DigitalOcean
// adapter: it reports an account's droplets with their addresses, tags,
// VPC and the ports their Cloud Firewalls allow inbound. It is its own
// module, built against the sdk and godo alone, like any third-party
// plugin.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{tuning: defaultTuning}}) }
