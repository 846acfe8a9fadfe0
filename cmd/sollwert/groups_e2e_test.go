package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
)

// fakeDigitalOcean answers the three lists the digitalocean plugin reads,
// in the API's shape: one droplet at 127.0.0.1 and a firewall "web" that
// allows tcp/22 inbound to it.
func fakeDigitalOcean(t *testing.T) string {
	t.Helper()
	pages := map[string]string{
		"/v2/droplets": `{"droplets":[{"id":4711,"name":"web-1","memory":1024,"vcpus":1,"disk":25,"status":"active",
			"created_at":"2026-11-01T12:00:00Z","image":{"id":1,"slug":"debian-12-x64","name":"Debian 12"},"size_slug":"s-1vcpu-1gb",
			"networks":{"v4":[{"ip_address":"127.0.0.1","netmask":"255.0.0.0","gateway":"127.0.0.254","type":"private"}],"v6":[]},
			"region":{"slug":"ams3","name":"Amsterdam 3"},"tags":["web"],"vpc_uuid":"v-1"}],"links":{},"meta":{"total":1}}`,
		"/v2/vpcs": `{"vpcs":[{"id":"v-1","name":"prod","region":"ams3","ip_range":"127.0.0.0/8"}],"links":{},"meta":{"total":1}}`,
		"/v2/firewalls": `{"firewalls":[{"id":"f-1","name":"web","status":"succeeded",
			"inbound_rules":[{"protocol":"tcp","ports":"22","sources":{"addresses":["0.0.0.0/0"]}}],
			"outbound_rules":[],"droplet_ids":[4711],"tags":[]}],"links":{},"meta":{"total":1}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer do-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSecurityGroupsAreTheSoll: the cloud says droplet web-1 (here at
// 127.0.0.1) may expose only tcp/22; the real nmap finds another port
// open there; an expect block with tcp_from = "security_groups" opens a
// deviation naming the group, which resolves when the port closes.
func TestSecurityGroupsAreTheSoll(t *testing.T) {
	requireNmap(t)
	e := newEnv(t)
	plugins := filepath.Join(e.dir, "plugins")
	if err := buildProviderPlugin(plugins, "digitalocean"); err != nil {
		t.Fatal(err)
	}
	api := fakeDigitalOcean(t)
	t.Setenv("DO_TOKEN", "do-token")
	// Neither listener is on tcp/22, the one port the group allows.
	ssh, _ := listen(t)
	rogue, closeRogue := listen(t)
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\n", plugins) + loopbackJob("lo", fmt.Sprintf("%d,%d", ssh, rogue), "") + fmt.Sprintf(`
job "do" {
  source    = "digitalocean"
  schedule  = "@every 1h"
  token_env = "DO_TOKEN"
  api_url   = %q
}
expect "cloud" {
  cidrs    = ["127.0.0.0/8"]
  tcp_from = "security_groups"
  tcp      = ["1-65535"]
  severity = "critical"
}
`, api+"/"))
	e.start()
	if run := e.runJob("do"); run.Status != model.RunSucceeded {
		t.Fatalf("digitalocean run: %+v", run)
	}
	e.runJob("lo")
	devs := e.deviations("")
	var asset model.Asset
	e.get("/v1/assets/127.0.0.1", &asset)
	if asset.Facts["security_groups"] != "web" || !slices.Contains(asset.Sources, "digitalocean") || !slices.Contains(asset.Sources, "nmap") {
		t.Fatalf("one asset from both sources: %+v", asset)
	}
	// Both listeners deviate.
	if len(devs) != 2 || !strings.Contains(devs[0].Detail, "its security groups (web) allow tcp 22") {
		t.Fatalf("deviations %+v", devs)
	}
	closeRogue()
	e.runJob("lo")
	devs = e.deviations("")
	if len(devs) != 1 || devs[0].Port != uint16(ssh) {
		t.Fatalf("after the port closed: %+v", devs)
	}
}
