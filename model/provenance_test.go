package model

import (
	"testing"
	"time"
)

func TestFactOrigins(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	a := Asset{Facts: map[string]string{"os_family": "Debian", "instance_id:puppetdb": "puppetdb:web1", "identity_conflict": "", "sys_descr": "Linux"}}
	history := []Version{ // out of order, as a caller may hold them
		{Version: 3, Time: t0.Add(2 * time.Hour), Source: "puppetdb", Job: "pdb", Changes: []Change{{Field: "fact", Key: "os_family", From: "RedHat", To: "Debian"}}},
		{Version: 1, Time: t0, Source: "snmp", Job: "switches", Changes: []Change{{Field: "asset", To: "discovered"}, {Field: "fact", Key: "sys_descr", To: "Linux"}}},
		{Version: 2, Time: t0.Add(time.Hour), Source: "puppetdb", Job: "pdb", RunID: "r2", Changes: []Change{
			{Field: "fact", Key: "os_family", To: "RedHat"}, {Field: "fact", Key: "instance_id:puppetdb", To: "puppetdb:web1"},
			{Field: "label", Key: "sys_descr", To: "not a fact"}}},
	}
	got := FactOrigins(&a, history)
	want := []FactOrigin{
		{Name: "instance_id:puppetdb", Value: "puppetdb:web1", Source: "puppetdb", Job: "pdb", RunID: "r2", Time: t0.Add(time.Hour)},
		{Name: "os_family", Value: "Debian", Source: "puppetdb", Job: "pdb", Time: t0.Add(2 * time.Hour)},
		{Name: "sys_descr", Value: "Linux", Source: "snmp", Job: "switches", Time: t0},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fact %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
