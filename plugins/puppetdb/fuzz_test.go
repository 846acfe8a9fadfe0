package main

import (
	"encoding/json"
	"testing"
)

// FuzzPages feeds a nodes page and an inventory page of any shape through
// the decoding and the observation builder: nothing may panic, and
// whatever has an address must pass the host's check.
func FuzzPages(f *testing.F) {
	for _, n := range append(genNodes(2), testNodesAsFake()...) {
		inv := n.inventory
		if inv == nil {
			inv = []byte(`{}`)
		}
		f.Add(append(append([]byte("["), n.row...), ']'), append(append([]byte("["), inv...), ']'))
	}
	f.Add([]byte(`[{"certname":"x","deactivated":"2026-12-01T00:00:00Z"}]`),
		[]byte(`[{"certname":"x","facts.networking":{"ip":"::ffff:198.18.0.1","ip6":"fe80::1%eth0","mac":"00:00:00:00:00:00",
			"interfaces":{"e":{"bindings":[{"address":"198.18.0.2","netmask":"255.255.255.255"}],"bindings6":[{"address":"2001:db8::1","netmask":"ffff::ffff"}],"mac":"01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14"},
			"f":null,"g":[1]}},"facts.dmi":{"product":null},"facts.serialnumber":["a"],"facts.os":{"release":{"full":7}}}]`))
	f.Fuzz(func(t *testing.T, nodes, inventory []byte) {
		var rows []nodeRow
		if json.Unmarshal(nodes, &rows) != nil {
			return
		}
		var inv []inventoryRow
		_ = json.Unmarshal(inventory, &inv)
		facts := map[string]*inventoryRow{}
		for i := range inv {
			facts[inv[i].Certname] = &inv[i]
		}
		ob := &observer{exclude: defaultExcludeInterfaces}
		for i := range rows {
			o, _ := ob.observation(&rows[i], facts[rows[i].Certname])
			if len(o.Addresses) > 0 {
				if err := o.Validate(); err != nil {
					t.Errorf("node %q: %v", rows[i].Certname, err)
				}
			}
		}
	})
}

// testNodesAsFake is testNodes in the shape the fake serves.
func testNodesAsFake() []fakeNode {
	var out []fakeNode
	for _, n := range testNodes {
		out = append(out, fakeNodeOf(nodeRow{Certname: n.certname, LatestReportStatus: n.report}, n.facts))
	}
	return out
}
