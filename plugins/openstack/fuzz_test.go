package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzObserve: whatever a server and its ports say, observe does not
// panic, and what it reports passes the host's checks.
func FuzzObserve(f *testing.F) {
	var doc struct {
		Servers []json.RawMessage `json:"servers"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "nova-servers.json"))
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		f.Fatal(err)
	}
	for _, s := range doc.Servers {
		f.Add([]byte(s), []byte(`[{"id": "p", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"ip_address": "198.18.1.9"}], "security_groups": ["g"]}]`))
	}
	f.Add([]byte(`{"addresses": {"n": [{"addr": "fe80::1%eth0"}, {"addr": "::ffff:198.18.0.1"}]}}`), []byte(`[{"mac_address": "00:11:22:33:44:55:66:77"}]`))
	groups := []byte(`[{"id": "g", "name": "web", "security_group_rules": [{"direction": "ingress", "protocol": "tcp", "port_range_min": 70000, "port_range_max": -1}]}]`)
	f.Fuzz(func(t *testing.T, srvJSON, portsJSON []byte) {
		var srv server
		if json.Unmarshal(srvJSON, &srv) != nil {
			return
		}
		var ps []port
		if json.Unmarshal(portsJSON, &ps) != nil {
			return
		}
		var gs []secGroupJSON
		if err := json.Unmarshal(groups, &gs); err != nil {
			t.Fatal(err)
		}
		idx := newGroupIndex()
		for _, g := range gs {
			idx.add(g)
		}
		o, _ := observe(srv, ps, idx, "RegionOne")
		if o == nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Errorf("observe made an observation the host rejects: %v\n%s", err, srvJSON)
		}
	})
}
