// Command sollwert-plugin-puppetdb is sollwert's PuppetDB adapter: it
// reports the nodes PuppetDB knows, with the addresses, MACs, OS, DMI
// UUID and serial number from their facts, their last report, and
// whether Puppet still manages them (active, deactivated, expired). It is
// its own module, built against the sdk and the standard library alone,
// like any third-party plugin.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{tuning: defaultTuning}}) }
