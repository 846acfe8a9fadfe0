package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/digitalocean/godo"
)

// FuzzAPIAnswers feeds droplet and firewall pages of any shape through
// the index and the observation builder: nothing may panic, and whatever
// has an address must pass the host's check.
func FuzzAPIAnswers(f *testing.F) {
	for _, name := range []string{"droplets.page1.json", "droplets.page2.json", "firewalls.page1.json", "firewalls.page2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "api", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"firewalls":[{"name":"x","inbound_rules":[{"protocol":"tcp","ports":"9-1"},{"protocol":"UDP","ports":"0"}],"droplet_ids":[1]}],
		"droplets":[{"id":1,"networks":{"v4":[{"ip_address":"::ffff:198.18.0.1"},{"ip_address":"fe80::1%eth0"},{"ip_address":"x"}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var page struct {
			Droplets  []godo.Droplet  `json:"droplets"`
			Firewalls []godo.Firewall `json:"firewalls"`
			VPCs      []*godo.VPC     `json:"vpcs"`
		}
		if json.Unmarshal(b, &page) != nil {
			return
		}
		idx, _ := newIndex(page.VPCs, page.Firewalls)
		for i := range page.Droplets {
			o, _ := idx.observation(&page.Droplets[i])
			if len(o.Addresses) > 0 {
				if err := o.Validate(); err != nil {
					t.Errorf("droplet %d: %v", page.Droplets[i].ID, err)
				}
			}
		}
	})
}
