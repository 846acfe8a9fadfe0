package sdk

import (
	"runtime/debug"

	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the major version of the plugin protocol in
// sdk/proto/pluginv1. The host refuses a plugin that speaks another one.
const ProtocolVersion = 1

// Plugin kinds, as served by a plugin and named in Info.
const (
	KindSource = "source"
	KindSink   = "sink"
	kindInfo   = "info"
)

// PluginPrefix starts the file name of every plugin binary:
// sollwert-plugin-NAME.
const PluginPrefix = "sollwert-plugin-"

// handshake is not a secret; it keeps a plugin binary started by hand from
// waiting for a host that is not there, and tells it so.
func handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "SOLLWERT_PLUGIN",
		MagicCookieValue: "d3b07384d113edec49eaa6238ad5ff00",
	}
}

// sdkVersion is the version of this module inside the running binary.
func sdkVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/sollwert/sollwert/sdk" {
			return bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/sollwert/sollwert/sdk" {
				if d.Replace != nil && d.Replace.Version == "" {
					return "devel" // replaced by a local directory
				}
				return d.Version
			}
		}
	}
	return "devel"
}
