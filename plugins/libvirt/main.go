// Command sollwert-plugin-libvirt is sollwert's libvirt adapter: it
// reports a hypervisor's domains (and the hypervisor's own addresses on
// its networks) as observations. It is its own module, built against the
// sdk alone, like any third-party plugin.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{}}) }
