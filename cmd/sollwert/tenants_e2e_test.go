package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
)

// TestTenantsKeepTheirOwnAssets: two tenants scan the same loopback
// address for real, each against its own expectation. They get two
// assets and their own deviations, and each tenant's token sees only its
// own.
func TestTenantsKeepTheirOwnAssets(t *testing.T) {
	requireNmap(t)
	a, _ := listen(t)
	b, _ := listen(t)
	e := newEnv(t)
	job := func(name string) string {
		return strings.ReplaceAll(loopbackJob(name, fmt.Sprintf("%d,%d", a, b), ""), "\n", "\n  ")
	}
	expect := func(allowed int) string { return strings.ReplaceAll(expectBlock(allowed), "\n", "\n  ") }
	e.writeConfig(fmt.Sprintf("tenant \"acme\" {%s%s}\ntenant \"globex\" {%s%s}\n", job("acme-lo"), expect(a), job("globex-lo"), expect(b)))
	cfg, _ := os.ReadFile(e.cfgPath)
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("api { listen = %q }", e.api)),
		[]byte(fmt.Sprintf("api {\n  listen = %q\n  tokens_file = %q\n}", e.api, filepath.Join(e.dir, "tokens.json"))), 1)
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	acme := e.token(t, "acme", "read,run", "acme")
	globex := e.token(t, "globex", "read,run", "globex")
	e.start()
	if code := e.call(t, "POST", "/v1/jobs/globex-lo/run", acme); code != 404 {
		t.Fatalf("acme ran globex's job: HTTP %d", code)
	}
	for job, token := range map[string]string{"acme-lo": acme, "globex-lo": globex} {
		if code := e.call(t, "POST", "/v1/jobs/"+job+"/run", token); code != 202 {
			t.Fatalf("run %s: HTTP %d", job, code)
		}
		waitFor(t, func() bool {
			var runs []model.Run
			return e.getAs(t, "/v1/jobs/"+job+"/runs", token, &runs) == 200 && len(runs) == 1 && runs[0].Status == model.RunSucceeded
		})
	}
	seen := map[string]string{}
	for tenant, c := range map[string]struct {
		token string
		rogue int
	}{"acme": {acme, b}, "globex": {globex, a}} {
		var assets []model.Asset
		e.getAs(t, "/v1/assets", c.token, &assets)
		if len(assets) != 1 || assets[0].Tenant != tenant || assets[0].Host() != "127.0.0.1" {
			t.Fatalf("%s's assets: %+v", tenant, assets)
		}
		seen[tenant] = assets[0].ID
		var devs []model.Deviation
		e.getAs(t, "/v1/deviations", c.token, &devs)
		if len(devs) != 1 || devs[0].Tenant != tenant || devs[0].Port != uint16(c.rogue) {
			t.Fatalf("%s's deviations: %+v", tenant, devs)
		}
		var jobs []struct{ Name string }
		e.getAs(t, "/v1/jobs", c.token, &jobs)
		if len(jobs) != 1 || jobs[0].Name != tenant+"-lo" {
			t.Fatalf("%s's jobs: %+v", tenant, jobs)
		}
	}
	if seen["acme"] == seen["globex"] {
		t.Fatalf("one asset for two tenants: %v", seen)
	}
}
