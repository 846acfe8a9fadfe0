package integrity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

var (
	t0      = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	nullLog = hclog.NewNullLogger()
)

// writeHistory writes versions 1..versions of n assets; os(i, v) names
// each version's OS, so that two stores can tell the same story but one.
func writeHistory(t *testing.T, st *store.Store, n, versions int, os func(i, v int) string) {
	t.Helper()
	ctx := context.Background()
	prev := make([]*model.Asset, n)
	for v := 1; v <= versions; v++ {
		if err := st.Update(ctx, func(tx *store.Txn) error {
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("a%d", i)
				at := t0.Add(time.Duration(v) * time.Hour)
				a := model.Asset{ID: id, Tenant: "default", Version: uint64(v), Status: "up", OS: os(i, v), LastSeen: at,
					Addresses: []sdk.Address{{Addr: fmt.Sprintf("198.18.0.%d", i+1), Type: "ipv4"}}}
				if err := tx.PutVersion(prev[i], &model.Version{AssetID: id, Version: uint64(v), Time: at, Asset: a}); err != nil {
					return err
				}
				prev[i] = &a
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "checkpoint.key")
	pub, err := GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := LoadPublicKey(path + ".pub"); err != nil || !got.Equal(pub) {
		t.Fatalf("public key file: %v %v", got, err)
	}
	return priv, pub
}

func checkpointTo(t *testing.T, st *store.Store, key ed25519.PrivateKey, exported string) []model.Checkpoint {
	t.Helper()
	var ex []Exporter
	if exported != "" {
		ex = append(ex, FileExporter{Path: exported})
	}
	c := &Checkpointer{Store: st, Key: key, Exporters: ex, Interval: time.Hour, Log: hclog.NewNullLogger()}
	made, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return made
}

func readExported(t *testing.T, path string) []model.Checkpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ReadExported(bytes.NewReader(b), path)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func firstProblem(rep *Report) string {
	for _, ch := range rep.Chains {
		for _, p := range ch.Problems {
			return p.String()
		}
	}
	return ""
}

func TestCheckpointsCatchARewrittenStore(t *testing.T) {
	key, pub := newKey(t)
	exported := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	honest := func(i, v int) string { return fmt.Sprintf("build %d", v) }

	real := openStore(t)
	writeHistory(t, real, 10, 3, honest)
	if made := checkpointTo(t, real, key, exported); len(made) != 1 || made[0].Seq != 30 {
		t.Fatalf("first checkpoint: %+v", made)
	}
	// Nothing moved: no second checkpoint.
	if made := checkpointTo(t, real, key, exported); len(made) != 0 {
		t.Fatalf("checkpoint of an unmoved chain: %+v", made)
	}
	cps := readExported(t, exported)
	rep, err := Verify(context.Background(), real, Options{PublicKey: pub, Exported: cps, ExportedFrom: exported})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Checkpoints != 2 || !rep.SignaturesChecked {
		t.Fatalf("the real store: %+v %s", rep, firstProblem(rep))
	}

	cases := []struct {
		name  string
		forge func(*testing.T) *store.Store
		want  string
	}{
		{"the whole store rewritten with one version changed, and re-signed with the stolen key", func(t *testing.T) *store.Store {
			forged := openStore(t)
			writeHistory(t, forged, 10, 3, func(i, v int) string {
				if i == 4 && v == 2 {
					return "nothing to see"
				}
				return honest(i, v)
			})
			checkpointTo(t, forged, key, "")
			return forged
		}, "entry 30 now hashes to"},
		{"the last versions cut off", func(t *testing.T) *store.Store {
			forged := openStore(t)
			writeHistory(t, forged, 10, 2, honest)
			return forged
		}, "the chain ends at entry 20: entries it vouched for were removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forged := c.forge(t)
			// On its own the forged store is consistent: only the exported
			// checkpoint can tell.
			alone, err := Verify(context.Background(), forged, Options{PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			if !alone.OK() {
				t.Fatalf("the forgery is not even consistent: %s", firstProblem(alone))
			}
			rep, err := Verify(context.Background(), forged, Options{PublicKey: pub, Exported: cps, ExportedFrom: exported})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("the exported checkpoint did not catch the forgery")
			}
			if p := firstProblem(rep); !strings.Contains(p, c.want) || !strings.Contains(p, "exported to "+exported) {
				t.Fatalf("first problem %q, want %q", p, c.want)
			}
		})
	}
}

func TestCheckpointSignatures(t *testing.T) {
	key, pub := newKey(t)
	_, otherPub := newKey(t)
	st := openStore(t)
	writeHistory(t, st, 3, 2, func(i, v int) string { return "x" })
	cp := checkpointTo(t, st, key, "")[0]
	changed := cp
	changed.Time = changed.Time.Add(time.Hour)
	for _, c := range []struct {
		name string
		cp   model.Checkpoint
		pub  ed25519.PublicKey
		want string
	}{
		{"genuine", cp, pub, ""},
		{"changed after signing", changed, pub, "its signature does not match its content"},
		{"another key", cp, otherPub, "it was not signed by the key given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckSignature(&c.cp, c.pub)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestExportFailureIsRetried(t *testing.T) {
	key, _ := newKey(t)
	st := openStore(t)
	writeHistory(t, st, 2, 1, func(i, v int) string { return "x" })
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "checkpoints.jsonl") // its directory does not exist yet
	c := &Checkpointer{Store: st, Key: key, Exporters: []Exporter{FileExporter{Path: path}}, Interval: time.Hour, Log: hclog.NewNullLogger()}
	if _, err := c.Checkpoint(context.Background()); err == nil {
		t.Fatal("export into a missing directory succeeded")
	}
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// An audit record moves the head: a second checkpoint.
	if err := st.Update(context.Background(), func(tx *store.Txn) error {
		return tx.AppendAudit(&model.AuditRecord{Time: t0, Tenant: "default", Actor: "test", Action: "reload"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cs := readExported(t, path); len(cs) != 2 {
		t.Fatalf("exported %d checkpoints, want the failed one and the new one", len(cs))
	}
}

func TestSigningKeyReadableByOthersIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if _, err := GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v", err)
	}
}

// TestRunCheckpointsAtStartAndStop: a checkpointer signs what moved as it
// starts (after a crash, the records since the last checkpoint) and once
// more as it stops, even with an interval that never comes.
func TestRunCheckpointsAtStartAndStop(t *testing.T) {
	key, _ := newKey(t)
	st := openStore(t)
	writeHistory(t, st, 2, 1, func(i, v int) string { return "x" })
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	c := &Checkpointer{Store: st, Key: key, Exporters: []Exporter{FileExporter{Path: path}}, Interval: time.Hour, Log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(path); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint at start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := st.Update(context.Background(), func(tx *store.Txn) error {
		return tx.AppendAudit(&model.AuditRecord{Time: t0, Tenant: "default", Actor: "test", Action: "reload"})
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if cs := readExported(t, path); len(cs) != 2 || cs[1].Seq != 3 {
		t.Fatalf("checkpoints %+v, want one at start (seq 2) and one at stop (seq 3)", cs)
	}
}

// TestCheckpointOfALinkNoEntryEndsAtAnyMore: a forger who writes the same
// history again in other transactions has the chain's entries end at
// other links; a checkpoint of a link that no entry ends at is named.
func TestCheckpointOfALinkNoEntryEndsAtAnyMore(t *testing.T) {
	key, pub := newKey(t)
	exported := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	same := func(i, v int) string { return fmt.Sprintf("build %d", v) }
	real := openStore(t)
	writeHistory(t, real, 10, 1, same)
	if made := checkpointTo(t, real, key, exported); len(made) != 1 || made[0].Seq != 10 {
		t.Fatalf("checkpoint: %+v", made)
	}
	// The forgery: the same first versions, and a second version of
	// each, in two transactions that end at links 5 and 20.
	forged := openStore(t)
	prev := make([]*model.Asset, 10)
	for _, txn := range [][][2]int{{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}},
		{{1, 5}, {1, 6}, {1, 7}, {1, 8}, {1, 9}, {2, 0}, {2, 1}, {2, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}, {2, 7}, {2, 8}, {2, 9}}} {
		if err := forged.Update(context.Background(), func(tx *store.Txn) error {
			for _, w := range txn {
				v, i := w[0], w[1]
				at := t0.Add(time.Duration(v) * time.Hour)
				a := model.Asset{ID: fmt.Sprintf("a%d", i), Tenant: "default", Version: uint64(v), Status: "up", OS: same(i, v), LastSeen: at,
					Addresses: []sdk.Address{{Addr: fmt.Sprintf("198.18.0.%d", i+1), Type: "ipv4"}}}
				if err := tx.PutVersion(prev[i], &model.Version{AssetID: a.ID, Version: a.Version, Time: at, Asset: a}); err != nil {
					return err
				}
				prev[i] = &a
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if alone, err := Verify(context.Background(), forged, Options{PublicKey: pub}); err != nil || !alone.OK() {
		t.Fatalf("the forgery is not even consistent: %v %s", err, firstProblem(alone))
	}
	rep, err := Verify(context.Background(), forged, Options{PublicKey: pub, Exported: readExported(t, exported), ExportedFrom: exported})
	if err != nil {
		t.Fatal(err)
	}
	if p := firstProblem(rep); rep.OK() || !strings.Contains(p, "checkpoint of entry 10 signed") || !strings.Contains(p, "no entry ends at link 10 any more: the chain was rewritten after it was signed") {
		t.Fatalf("first problem %q", p)
	}
}
