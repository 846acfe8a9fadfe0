// Package rules judges assets against expect blocks.
//
// An Engine is compiled once per configuration and is safe for concurrent
// use. Evaluate is a pure function of an asset, the rules and the clock:
// it returns every way the asset breaks its rules right now, and the store
// turns that set into opened, kept and resolved deviations. The engine
// knows nothing about how assets are stored or how scans are run.
package rules
