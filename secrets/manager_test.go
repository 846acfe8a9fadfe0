package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/internal/testvault"
	"github.com/sollwert/sollwert/secrets"
	"github.com/sollwert/sollwert/secrets/vault"
)

const (
	community = "c0mmunity-51d0"
	hmacOld   = "hmac-old-a3c2"
	hmacNew   = "hmac-new-e7f9"
)

var (
	snmpRef = secrets.Ref{Mount: "secret", Path: "network/snmp", Key: "community"}
	hookRef = secrets.Ref{Mount: "secret", Path: "hooks", Key: "hmac"}
)

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setup is a fake Vault with two secrets, a client of it, and a manager
// whose files go under the test's own RUNTIME_DIRECTORY; the log must
// hold no secret at the end.
func setup(t *testing.T) (*testvault.Server, *vault.Client, *secrets.Manager, *logBuf) {
	t.Helper()
	v := testvault.New(t)
	v.Put("secret", "network/snmp", map[string]any{"community": community})
	v.Put("secret", "hooks", map[string]any{"hmac": hmacOld})
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(v.RootToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	c, err := vault.New(context.Background(), vault.Config{Address: v.URL, TokenFile: token}, log)
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	m := secrets.NewManager(secrets.Options{DataDir: t.TempDir(), Logger: log,
		Getenv: func(k string) string { return map[string]string{"RUNTIME_DIRECTORY": run}[k] }})
	t.Cleanup(func() {
		m.Close()
		c.Close()
		for _, s := range append([]string{community, hmacOld, hmacNew}, v.Issued()...) {
			if strings.Contains(logs.String(), s) {
				t.Errorf("the log holds a secret (%.6s...):\n%s", s, logs.String())
			}
		}
	})
	return v, c, m, logs
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStageWritesPrivateFiles(t *testing.T) {
	_, c, m, _ := setup(t)
	st, err := m.Stage(context.Background(), c, []secrets.Ref{snmpRef, hookRef, snmpRef})
	if err != nil {
		t.Fatal(err)
	}
	st.Commit()
	if st.Len() != 2 {
		t.Fatalf("%d files for two references", st.Len())
	}
	for ref, want := range map[secrets.Ref]string{snmpRef: community, hookRef: hmacOld} {
		p := st.Path(ref)
		if got := content(t, p); got != want {
			t.Errorf("%s holds %q", p, got)
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", p, fi.Mode(), err)
		}
		if !strings.Contains(filepath.Base(p), strings.ReplaceAll(ref.Path, "/", "_")) {
			t.Errorf("file name %s does not say which secret it holds", p)
		}
	}
	dir := m.Dir()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(st.Path(snmpRef)) != dir {
		t.Fatalf("directory %s: %v, %v", dir, fi.Mode(), err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the directory outlived Close: %v", err)
	}
}

func TestFailedStageWritesNothing(t *testing.T) {
	_, c, m, _ := setup(t)
	missing := secrets.Ref{Mount: "secret", Path: "network/nope", Key: "community"}
	noKey := secrets.Ref{Mount: "secret", Path: "hooks", Key: "nokey"}
	st, err := m.Stage(context.Background(), c, []secrets.Ref{snmpRef, missing, noKey})
	if err == nil || st != nil {
		t.Fatal("a stage with an unreadable reference succeeded")
	}
	var re *secrets.ReadError
	if !errors.As(err, &re) {
		t.Fatalf("%T is no ReadError", err)
	}
	for _, want := range []string{"secret/network/nope#community: GET /v1/secret/data/network/nope", "secret/hooks#nokey: GET /v1/secret/data/hooks", `"nokey"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if m.Dir() != "" {
		t.Fatalf("a failed stage made %s", m.Dir())
	}
}

func TestCommitAndAbort(t *testing.T) {
	v, c, m, _ := setup(t)
	first, err := m.Stage(context.Background(), c, []secrets.Ref{snmpRef, hookRef})
	if err != nil {
		t.Fatal(err)
	}
	first.Commit()
	snmpFile, hookFile := first.Path(snmpRef), first.Path(hookRef)

	// A stage that adds a reference and is aborted: its file goes, the
	// running ones stay; a value that changed meanwhile is the new one.
	v.Put("secret", "hooks", map[string]any{"hmac": hmacNew})
	v.Put("secret", "db", map[string]any{"password": "pw-3e1"})
	dbRef := secrets.Ref{Mount: "secret", Path: "db", Key: "password"}
	aborted, err := m.Stage(context.Background(), c, []secrets.Ref{snmpRef, hookRef, dbRef})
	if err != nil {
		t.Fatal(err)
	}
	dbFile := aborted.Path(dbRef)
	if aborted.Path(hookRef) != hookFile || content(t, hookFile) != hmacNew {
		t.Fatalf("the staged hook file %s holds %q", aborted.Path(hookRef), content(t, hookFile))
	}
	aborted.Abort()
	if _, err := os.Stat(dbFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an aborted stage left %s: %v", dbFile, err)
	}
	if content(t, snmpFile) != community {
		t.Fatal("an aborted stage changed a running file")
	}

	// A committed stage without the hook reference removes its file.
	next, err := m.Stage(context.Background(), c, []secrets.Ref{snmpRef})
	if err != nil {
		t.Fatal(err)
	}
	next.Commit()
	if _, err := os.Stat(hookFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s outlived its reference: %v", hookFile, err)
	}
	if next.Path(snmpRef) != snmpFile || content(t, snmpFile) != community {
		t.Fatal("the file of a kept reference moved or changed")
	}
	// Nothing left at all.
	empty, err := m.Stage(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	empty.Commit()
	if entries, _ := os.ReadDir(m.Dir()); len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
}

// TestLeasedSecretIsReadAgain: a read that returns a lease is read again
// before the lease ends, and the file follows the new value; while Vault
// refuses, the file keeps the last value and the log says why.
func TestLeasedSecretIsReadAgain(t *testing.T) {
	v, c, m, logs := setup(t)
	v.SetLease("secret", "hooks", time.Second)
	st, err := m.Stage(context.Background(), c, []secrets.Ref{hookRef, snmpRef})
	if err != nil {
		t.Fatal(err)
	}
	st.Commit()
	file := st.Path(hookRef)
	v.Put("secret", "hooks", map[string]any{"hmac": hmacNew})
	deadline := time.Now().Add(3 * time.Second)
	for content(t, file) != hmacNew {
		if time.Now().After(deadline) {
			t.Fatalf("the file still holds the old value after 3s of a 1s lease (%d reads)", v.Requests("/v1/secret/data/hooks"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := v.Requests("/v1/secret/data/network/snmp"); n != 1 {
		t.Fatalf("a secret without a lease was read %d times", n)
	}
	// The line follows the file's rewrite, so it may come a moment later.
	waitFor(t, func() bool { return strings.Contains(logs.String(), "a secret changed in Vault") })

	// Vault refuses from now on: the file keeps the last value.
	v.Revoke(v.RootToken())
	reads := v.Requests("/v1/secret/data/hooks")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "lease has ended and reading it again fails") })
	if v.Requests("/v1/secret/data/hooks") <= reads {
		t.Fatal("no read was tried")
	}
	if content(t, file) != hmacNew {
		t.Fatal("a refused read changed the file")
	}
	if !strings.Contains(logs.String(), "secret/hooks#hmac") || !strings.Contains(logs.String(), "403") {
		t.Fatalf("the log does not say which secret and why:\n%s", logs.String())
	}
}

func TestPrivateDir(t *testing.T) {
	data := t.TempDir()
	run := t.TempDir()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	shm := false
	if f, err := os.CreateTemp("/dev/shm", "probe-"); err == nil {
		f.Close()
		os.Remove(f.Name())
		shm = true
	}
	cases := []struct {
		name   string
		getenv func(string) string
		under  string
	}{
		{"under RUNTIME_DIRECTORY when systemd sets it", env(map[string]string{"RUNTIME_DIRECTORY": run}), run},
		{"the first of several runtime directories", env(map[string]string{"RUNTIME_DIRECTORY": run + ":/elsewhere"}), run},
		{"in /dev/shm without one", env(nil), map[bool]string{true: "/dev/shm", false: data}[shm]},
		{"past a runtime directory that is not there", env(map[string]string{"RUNTIME_DIRECTORY": "/nonexistent"}), map[bool]string{true: "/dev/shm", false: data}[shm]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := secrets.PrivateDir(data, tc.getenv)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if filepath.Dir(dir) != tc.under {
				t.Fatalf("%s is not under %s", dir, tc.under)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("mode %v, %v", fi.Mode(), err)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
