// Command sollwert-plugin-openstack is sollwert's OpenStack adapter: it
// reports the servers of one project (Nova), with the addresses and MACs
// of their ports and what their security groups let in (Neutron), as
// observations. It is its own module, built against the sdk and
// gophercloud alone, like any third-party plugin.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{}}) }
