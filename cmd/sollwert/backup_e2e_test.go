package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
)

// TestBackupWhileWritingAndRestore: a backup taken through the API while
// a scan runs, restored into an empty data dir, serves the same assets,
// history and deviations; restoring over a store is refused.
func TestBackupWhileWritingAndRestore(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	body := loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed)
	e.writeConfig(body)
	e.start()
	e.runJob("lo")
	// A second run goes on while the backup is taken.
	resp, err := http.Post("http://"+e.api+"/v1/jobs/lo/run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	backup := filepath.Join(e.dir, "sollwert.backup")
	if out, err := exec.Command(binary, "backup", backup, "--url", "http://"+e.api).CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	waitFor(t, func() bool {
		var runs []model.Run
		e.get("/v1/jobs/lo/runs", &runs)
		return len(runs) == 2 && runs[0].Status != model.RunRunning
	})
	var asset model.Asset
	var history []model.Version
	e.get("/v1/assets/127.0.0.1", &asset)
	e.get("/v1/assets/127.0.0.1/history", &history)
	devs := e.deviations("")
	e.stop(9)

	// Restore into a new data dir, and run a daemon on it.
	r := newEnv(t)
	r.writeConfig(body)
	if out, err := exec.Command(binary, "restore", backup, "--config", r.cfgPath).CombinedOutput(); err != nil || !strings.Contains(string(out), "restored") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "restore", backup, "--config", r.cfgPath).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Fatalf("a restore over a store: %v\n%s", err, out)
	}
	// The chains come back whole with the records.
	if code, out := sollwertVerify(t, "--config", r.cfgPath); code != 0 || !strings.Contains(out, "tenant default: OK") {
		t.Fatalf("verify of the restored store: %d\n%s", code, out)
	}
	r.start()
	var rAsset model.Asset
	var rHistory []model.Version
	r.get("/v1/assets/127.0.0.1", &rAsset)
	r.get("/v1/assets/127.0.0.1/history", &rHistory)
	if rAsset.ID != asset.ID || len(rHistory) == 0 || rHistory[0].Version != 1 || len(rAsset.Services) != len(asset.Services) {
		t.Fatalf("restored asset %+v (history %d), had %+v (history %d)", rAsset, len(rHistory), asset, len(history))
	}
	// The backup was taken during the second run: it holds the first
	// run's state at least, and the deviation.
	if rDevs := r.deviations(""); len(rDevs) != len(devs) || !reflect.DeepEqual(ids(rDevs), ids(devs)) {
		t.Fatalf("restored deviations %v, had %v", ids(rDevs), ids(devs))
	}
	b, _ := os.ReadFile(backup)
	if bytes.Contains(b, []byte("swt_")) {
		t.Fatal("the backup holds a token")
	}
}
