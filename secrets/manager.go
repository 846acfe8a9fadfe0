package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options configure a Manager.
type Options struct {
	// DataDir is where the files go when there is no tmpfs (PrivateDir).
	DataDir string
	Logger  hclog.Logger
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
}

// Manager keeps one file per secret a configuration refers to. Stage
// reads a new set of references and writes their files; Commit makes it
// the running set (re-reading leased values before they end, removing
// the files no longer referred to), Abort drops what the stage added.
// One stage at a time: the caller serialises Stage with Commit or Abort.
type Manager struct {
	opts Options
	log  hclog.Logger

	mu     sync.Mutex
	dir    string           // made at the first stage that needs it
	files  map[string]*file // the committed set, by file name
	stop   context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// file is one secret's file. What is kept of the value is its hash, to
// notice a change without holding the secret.
type file struct {
	ref    Ref
	path   string
	sum    [sha256.Size]byte
	lease  time.Duration
	readAt time.Time
}

// NewManager returns a Manager with no files yet.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	return &Manager{opts: opts, log: opts.Logger, files: map[string]*file{}}
}

// Dir is the directory of the files; "" before the first one.
func (m *Manager) Dir() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dir
}

// Stage is a set of references read and written to files, not yet
// running.
type Stage struct {
	m     *Manager
	r     Resolver
	files map[string]*file
	names map[Ref]string
	added []string // files this stage created
	done  bool
}

// Stage reads every ref through r (each once) and writes its file. Any
// read that fails fails the whole stage, and nothing is written; the
// error joins one *ReadError per failed reference.
func (m *Manager) Stage(ctx context.Context, r Resolver, refs []Ref) (*Stage, error) {
	s := &Stage{m: m, r: r, files: map[string]*file{}, names: map[Ref]string{}}
	type read struct {
		name  string
		f     *file
		value string
	}
	var reads []read
	var errs []error
	for _, ref := range refs {
		if _, dup := s.names[ref]; dup {
			continue
		}
		name := fileName(r.Origin(), ref)
		s.names[ref] = name
		v, err := r.Read(ctx, ref)
		if err != nil {
			errs = append(errs, &ReadError{Ref: ref, Err: err})
			continue
		}
		reads = append(reads, read{name, &file{ref: ref, sum: sha256.Sum256([]byte(v.Secret)), lease: v.Lease, readAt: time.Now()}, v.Secret})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(reads) == 0 {
		return s, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("secrets: the manager is closed")
	}
	if m.dir == "" {
		dir, err := PrivateDir(m.opts.DataDir, m.opts.Getenv)
		if err != nil {
			return nil, err
		}
		m.dir = dir
		m.log.Debug("secret files directory made", "dir", dir)
	}
	for _, rd := range reads {
		rd.f.path = filepath.Join(m.dir, rd.name)
		s.files[rd.name] = rd.f
		running := m.files[rd.name]
		if running != nil && running.sum == rd.f.sum {
			continue
		}
		if err := writeFile(rd.f.path, rd.value); err != nil {
			s.removeAdded()
			return nil, fmt.Errorf("secret %s: %w", rd.f.ref, err)
		}
		if running != nil {
			// The file on disk is the new value now, whatever becomes of
			// this stage: it is what Vault says.
			running.sum, running.lease, running.readAt = rd.f.sum, rd.f.lease, rd.f.readAt
		} else {
			s.added = append(s.added, rd.name)
		}
	}
	return s, nil
}

// Path is the file that holds ref; "" for a reference the stage did not
// read.
func (s *Stage) Path(ref Ref) string {
	if f := s.files[s.names[ref]]; f != nil {
		return f.path
	}
	return ""
}

// Len is how many files the stage holds.
func (s *Stage) Len() int { return len(s.files) }

// Commit makes the stage the running set: files of references it no
// longer holds are removed, and leased values are re-read before their
// lease ends. A nil or finished stage does nothing.
func (s *Stage) Commit() {
	if s == nil || s.done {
		return
	}
	s.done = true
	m := s.m
	m.stopRefresh()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, f := range m.files {
		if s.files[name] == nil {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("cannot remove a secret file no longer used", "file", f.path, "error", err)
			}
		}
	}
	m.files = s.files
	if m.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	for _, f := range m.files {
		if f.lease > 0 {
			m.wg.Add(1)
			go m.refresh(ctx, s.r, f)
		}
	}
}

// Abort removes the files the stage created; the running set stays as it
// was. A nil or finished stage does nothing.
func (s *Stage) Abort() {
	if s == nil || s.done {
		return
	}
	s.done = true
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.removeAdded()
}

// removeAdded removes the files only this stage made; m.mu is held.
func (s *Stage) removeAdded() {
	for _, name := range s.added {
		if s.m.files[name] == nil {
			os.Remove(filepath.Join(s.m.dir, name))
		}
	}
	s.added = nil
}

func (m *Manager) stopRefresh() {
	m.mu.Lock()
	stop := m.stop
	m.stop = nil
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	m.wg.Wait()
}

// Close stops re-reading and removes every file and the directory.
func (m *Manager) Close() error {
	m.stopRefresh()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.files = map[string]*file{}
	dir := m.dir
	m.dir = ""
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("secrets: remove %s: %w", dir, err)
	}
	return nil
}

// refresh reads f again before its lease ends, for as long as reads
// return a lease, and rewrites its file when the value changed. When Vault
// cannot be read the file keeps the last value: a source that still
// works with it keeps working, and the log says what is wrong.
func (m *Manager) refresh(ctx context.Context, r Resolver, f *file) {
	defer m.wg.Done()
	m.mu.Lock()
	lease, readAt := f.lease, f.readAt
	m.mu.Unlock()
	wait := time.Until(readAt.Add(lease * 2 / 3))
	for {
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		v, err := r.Read(ctx, f.ref)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.mu.Lock()
			expired := time.Now().After(f.readAt.Add(f.lease))
			m.mu.Unlock()
			if expired {
				m.log.Error("a secret's lease has ended and reading it again fails; its file keeps the last value", "ref", f.ref.String(), "error", err)
			} else {
				m.log.Warn("re-reading a secret before its lease ends failed; trying again", "ref", f.ref.String(), "error", err)
			}
			wait = min(max(lease/6, 100*time.Millisecond), time.Minute)
			continue
		}
		sum := sha256.Sum256([]byte(v.Secret))
		m.mu.Lock()
		changed := sum != f.sum
		if changed {
			err = writeFile(f.path, v.Secret)
		}
		if err == nil {
			f.sum = sum
		}
		f.lease, f.readAt = v.Lease, time.Now()
		m.mu.Unlock()
		switch {
		case err != nil:
			m.log.Error("cannot rewrite a secret's file", "ref", f.ref.String(), "error", err)
		case changed:
			m.log.Info("a secret changed in Vault; its file is rewritten", "ref", f.ref.String(), "file", f.path)
		default:
			m.log.Debug("secret re-read before its lease ended", "ref", f.ref.String(), "lease", v.Lease)
		}
		if v.Lease <= 0 {
			return
		}
		lease = v.Lease
		wait = lease * 2 / 3
	}
}

// fileName is readable (the reference, with what a file name cannot hold
// replaced) and unique (a hash of the origin and the reference).
func fileName(origin string, ref Ref) string {
	h := sha256.Sum256([]byte(origin + "\x00" + ref.Mount + "\x00" + ref.Path + "\x00" + ref.Key))
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, ref.Mount+"_"+ref.Path+"_"+ref.Key)
	if len(slug) > 80 {
		slug = slug[:80]
	}
	return strings.TrimLeft(slug, ".") + "-" + hex.EncodeToString(h[:6])
}
