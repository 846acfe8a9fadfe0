// Package sdk is the contract between sollwert and its sources.
//
// A source (the built-in nmap and SNMP scanners, or an adapter plugin
// binary written by anyone) implements Source. The daemon drives every
// source through this one interface, in-process or over go-plugin, so a
// source never learns about scheduling, storage or rules: it is given a
// configuration and reports what it sees, together with the scope it
// looked at.
//
// This module must stay small: it depends on nothing of the daemon, so a
// third-party plugin's go.mod carries no Badger, nmap or SNMP library.
package sdk
