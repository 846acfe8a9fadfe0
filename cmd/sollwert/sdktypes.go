package main

import "github.com/sollwert/sollwert/sdk"

type sdkSource = sdk.Source
