// Command sollwert-plugin-hostsfile is an example sollwert plugin: it
// reports the hosts of an inventory file (CSV or JSON) as observations.
// It is built against the sdk module alone, as a third party would.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{}}) }
