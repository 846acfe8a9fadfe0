// Command sollwert-plugin-aws is sollwert's AWS EC2 adapter: it reports
// the EC2 instances of the configured regions, with their network
// interfaces, tags and the inbound rules of their security groups, as
// observations. It is its own module, built against the sdk and the AWS
// SDK for Go v2 alone, like any third-party plugin.
package main

import "github.com/sollwert/sollwert/sdk"

func main() { sdk.Serve(sdk.Plugin{Source: &source{}}) }
