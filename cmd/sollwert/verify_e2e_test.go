package main

import (
	be "encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// sollwertVerify runs `sollwert verify` and returns its exit status and
// output.
func sollwertVerify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"verify"}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// tamper changes a stopped daemon's store through Badger directly, as
// someone with the data directory could.
func tamper(t *testing.T, dir string, fn func(*badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNamesTamperingInARealStore: a daemon scans 127.0.0.1 for
// real twice and checkpoints its chains into an export file; verify
// passes online and offline, then names a changed history record, a
// deleted one and a deleted chain entry.
func TestVerifyNamesTamperingInARealStore(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	key := filepath.Join(e.dir, "checkpoint.key")
	if out, err := exec.Command(binary, "keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	export := filepath.Join(e.dir, "checkpoints.jsonl")
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) +
		fmt.Sprintf("integrity {\n  signing_key_file = %q\n  checkpoint_interval = \"1s\"\n  export_file = %q\n}\n", key, export))
	e.start()
	e.runJob("lo")
	closeRogue()
	e.runJob("lo") // the rogue port closed: version 2 of 127.0.0.1
	var asset model.Asset
	e.get("/v1/assets/127.0.0.1", &asset)
	named := fmt.Sprintf("version 1 of asset %s (127.0.0.1)", asset.ID)
	waitFor(t, func() bool { b, _ := os.ReadFile(export); return len(b) > 0 })
	if code, out := sollwertVerify(t, "--config", e.cfgPath, "--url", "http://"+e.api); code != 0 || !strings.Contains(out, "in use by the daemon") || !strings.Contains(out, "tenant default: OK") {
		t.Fatalf("verify of the running daemon: %d\n%s", code, out)
	}
	e.stop(syscall.SIGTERM) // and its last checkpoint
	data := filepath.Join(e.dir, "data")
	code, out := sollwertVerify(t, "--config", e.cfgPath)
	if code != 0 || !strings.Contains(out, "tenant default: OK") || !strings.Contains(out, ", signatures checked") {
		t.Fatalf("verify of the stopped daemon's store: %d\n%s", code, out)
	}

	v1 := be.BigEndian.AppendUint64([]byte("h/default/"+asset.ID+"/"), 1)
	var original []byte
	tamper(t, data, func(txn *badger.Txn) error {
		item, err := txn.Get(v1)
		if err != nil {
			return fmt.Errorf("version 1 of 127.0.0.1 is not in the history: %w", err)
		}
		if original, err = item.ValueCopy(nil); err != nil {
			return err
		}
		changed := append([]byte(nil), original...)
		changed[len(changed)/2] ^= 0x01
		return txn.Set(v1, changed)
	})
	code, out = sollwertVerify(t, "--data", data, "--public-key", key+".pub", "--checkpoints", export)
	if code != 1 || !strings.Contains(out, named+": the record does not match its hash") {
		t.Fatalf("verify after a byte of a history record changed: %d\n%s", code, out)
	}

	tamper(t, data, func(txn *badger.Txn) error { return txn.Delete(v1) })
	code, out = sollwertVerify(t, "--data", data)
	if code != 1 || !strings.Contains(out, named+": the record is missing (deleted)") {
		t.Fatalf("verify after a history record was deleted: %d\n%s", code, out)
	}

	tamper(t, data, func(txn *badger.Txn) error {
		if err := txn.Set(v1, original); err != nil {
			return err
		}
		return txn.Delete(be.BigEndian.AppendUint64([]byte("c/default/"), 2))
	})
	code, out = sollwertVerify(t, "--data", data, "--json")
	if code != 1 || !strings.Contains(out, "chain entry 2 is missing: the chain jumps from 1 to 3") || !strings.Contains(out, `"ok": false`) {
		t.Fatalf("verify after a chain entry was deleted: %d\n%s", code, out)
	}
}
