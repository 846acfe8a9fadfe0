package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

func TestWriteHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	versions := []model.Version{
		{Version: 1, Time: t0, Source: "nmap", Job: "scan", Changes: []model.Change{{Field: "asset", To: "discovered"}}},
		{Version: 2, Time: t0.Add(time.Hour), Source: "puppetdb", Job: "pdb", Changes: []model.Change{
			{Field: "merged", From: "a1", To: "b2"},
			{Field: "fact", Key: "instance_id:puppetdb", To: "puppetdb:web1"},
			{Field: "service", Key: "tcp/22", From: "open ssh", To: "left with 198.18.0.5"},
			{Field: "address", From: "198.18.0.5"},
		}},
		{Version: 3, Time: t0.Add(2 * time.Hour), Source: "nmap", Changes: []model.Change{
			{Field: "split", From: "b2", To: "a1"},
			{Field: "status", From: "merged", To: "up"},
		}},
	}
	var b strings.Builder
	writeHistory(&b, versions)
	want := `version 1  2026-12-02T10:00:00Z  nmap, job scan
  asset: discovered

version 2  2026-12-02T11:00:00Z  puppetdb, job pdb
  merged: asset a1 went into b2
  fact instance_id:puppetdb: puppetdb:web1
  service tcp/22: open ssh -> left with 198.18.0.5
  address: 198.18.0.5, removed

version 3  2026-12-02T12:00:00Z  nmap
  split: asset a1 split off b2
  status: merged -> up
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
