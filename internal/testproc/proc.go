// Package testproc looks at the process table for tests that must prove
// no process of theirs was left behind.
package testproc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Running lists the pids of processes whose program file is called name.
func Running(name string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		if filepath.Base(strings.SplitN(string(b), "\x00", 2)[0]) == name {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

// WaitGone fails the test unless every process called name has ended
// within wait.
func WaitGone(t testing.TB, name string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pids := Running(name)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running: pids %v", name, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WriteExecutable writes a program file that the test runs next. A child
// forked by another goroutine while the file is open for writing inherits
// the descriptor until it execs, and running the file in that window fails
// with "text file busy"; holding the fork lock while the file is open keeps
// any fork out of the window.
func WriteExecutable(t testing.TB, path string, content []byte) {
	t.Helper()
	syscall.ForkLock.Lock()
	err := os.WriteFile(path, content, 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}
