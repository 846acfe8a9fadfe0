package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/go-hclog"
)

// SchemaVersion is the layout this build reads and writes. Bump it, and add
// a migration (migrate), whenever a key or an encoding changes
// incompatibly.
//
//	1  asset records without a head (codecAssetV1); every version under h/
//	2  asset records carry their newest version (codecAssetV2, record.go)
//	3  the active-deviation index (devindex.go)
//	4  the index's values carry the state
//	5  history and audit records are chained per tenant (chain.go)
//	6  services may carry the address they were seen on (tagServiceAddresses)
//	7  one chain entry per transaction and tenant (chainFormatBatch)
//	8  no address index entry for the address an asset was made from (bornHolder)
const SchemaVersion = 8

// ErrNotFound is returned for records that do not exist.
var ErrNotFound = errors.New("not found")

// Options tune the store.
type Options struct {
	// InMemory keeps everything in memory (tests, `scan --ephemeral`).
	InMemory bool
	Logger   hclog.Logger
	// ValueLogGCInterval is how often the store reclaims value-log space
	// that rewritten and deleted records left behind (records above
	// 64 bytes live in the value log, and every scan rewrites the asset
	// records it touches). 0 means every 10 minutes; negative, never.
	ValueLogGCInterval time.Duration
}

// Store is the handle on one Badger database.
type Store struct {
	db  *badger.DB
	log hclog.Logger
	// stopGC ends the value-log collector; gcDone is closed when it has.
	stopGC  chan struct{}
	gcDone  chan struct{}
	chains  chains
	addrs   *addressFilter
	buffers txnBuffers
	// loaded is closed once the address filter holds the stored keys.
	loaded chan struct{}
}

// openDB opens Badger in dir, writing nothing.
func openDB(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log.Named("badger")}).
		// The defaults (5 x 64 MB memtables, 256 MB block cache) are sized
		// for a database server; a discovery daemon wants well under 1 GiB.
		WithMemTableSize(64 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		// Records above 64 bytes go to the value log, so the LSM tree
		// holds keys and pointers: memtables fill and flush several
		// times less often during a big first run, and compactions do
		// not rewrite assets. The space rewritten records leave behind is
		// reclaimed by collectEvery.
		WithValueThreshold(64).
		WithNumCompactors(2).
		WithCompression(options.None)
	if opts.InMemory {
		// In memory there is no value log: every value stays in the LSM
		// tree, so the threshold must admit the largest record (Badger
		// refuses bigger values, and v4.9.6 panics formatting that error).
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("").WithValueThreshold(1 << 20)
	} else {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
	}
	db, err := badger.Open(bo)
	if err != nil {
		if !opts.InMemory && isLockError(err) {
			return nil, fmt.Errorf("store: data dir %s is in use by another sollwert process: %w", dir, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Store{db: db, log: log, chains: chains{heads: map[string]chainHead{}}}, nil
}

// Open opens (creating if needed) the store in dir and checks its schema
// version.
func Open(dir string, opts Options) (*Store, error) {
	s, err := openDB(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := s.checkSchema(); err != nil {
		s.db.Close()
		return nil, err
	}
	// Until the filter holds every stored address, lookups read the
	// store; a big store takes a moment to load, and Open need not wait.
	s.addrs, s.loaded = newAddressFilter(), make(chan struct{})
	go func() {
		defer close(s.loaded)
		if err := s.addrs.load(s.db); err != nil {
			s.log.Warn("the address filter stays off; every address lookup reads the store", "error", err)
		}
	}()
	if every := opts.ValueLogGCInterval; !opts.InMemory && every >= 0 {
		if every == 0 {
			every = 10 * time.Minute
		}
		s.stopGC, s.gcDone = make(chan struct{}), make(chan struct{})
		go s.collectEvery(every)
	}
	return s, nil
}

// collectEvery runs CollectGarbage every interval until Close.
func (s *Store) collectEvery(every time.Duration) {
	defer close(s.gcDone)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-tick.C:
			s.CollectGarbage()
		}
	}
}

func isLockError(err error) bool {
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

func (s *Store) checkSchema() error {
	// An index a migration needs is built first, in transactions of its
	// own; the version moves only once it is complete.
	var stored int
	if err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySchema))
		if err != nil {
			return nil
		}
		return item.Value(func(v []byte) error { stored, _ = strconv.Atoi(string(v)); return nil })
	}); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if stored >= 1 && stored < 4 {
		if err := buildDeviationIndex(s.db); err != nil {
			return err
		}
	}
	if stored >= 1 && stored < 5 {
		if err := s.chainExisting(); err != nil {
			return err
		}
	}
	var from int
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySchema))
		if errors.Is(err, badger.ErrKeyNotFound) {
			if !isEmpty(txn) {
				return fmt.Errorf("store: database has records but no schema version; it was not written by sollwert")
			}
			return txn.Set([]byte(keySchema), []byte(strconv.Itoa(SchemaVersion)))
		}
		if err != nil {
			return fmt.Errorf("store: read schema version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("store: read schema version: %w", err)
		}
		got, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("store: schema version %q is not a number", v)
		}
		if got > SchemaVersion || got < 1 {
			return fmt.Errorf("store: data was written with schema version %d, this sollwert reads version %d (and migrates older ones from 1)", got, SchemaVersion)
		}
		if got < SchemaVersion {
			from = got
			return migrate(txn, got)
		}
		return nil
	})
	if err == nil && from != 0 {
		s.log.Info("store: migrated the schema", "from", from, "to", SchemaVersion)
	}
	return err
}

// migrate brings a store of schema version from to SchemaVersion, in the
// transaction that checks the version, so a crash leaves either version
// whole.
func migrate(txn *badger.Txn, from int) error {
	for v := from; v < SchemaVersion; v++ {
		switch v {
		case 1:
			// 1 -> 2: asset records may carry their newest version. Records
			// of version 1 are read as records without one, so nothing is
			// rewritten; an older sollwert must not open the store any more,
			// which the new version number sees to.
		case 2:
			// 2 -> 3: the active-deviation index, built by checkSchema
			// before this transaction (buildDeviationIndex).
		case 3:
			// 3 -> 4: the index's values carry the state; checkSchema
			// rebuilt it.
		case 4:
			// 4 -> 5: chains, built by checkSchema before this transaction
			// (chainExisting).
		case 5:
			// 5 -> 6: records whose services carry addresses have tags of
			// their own; older records are read as they are, and their
			// services have no address until a scan sees them again.
		case 6:
			// 6 -> 7: a transaction writes one chain entry per tenant,
			// holding all its links. The entries of one link written
			// before are read as they are and nothing is rewritten (their
			// hashes are what checkpoints signed); an older sollwert must
			// not open the store any more, as it cannot read the new ones.
		case 7:
			// 7 -> 8: a new asset made from its address (an id that
			// begins with it) gets no index entry for it. The entries
			// written before stay valid and nothing is rewritten; an
			// older sollwert must not open the store any more, as it
			// would find no holder for those addresses.
		default:
			return fmt.Errorf("store: no migration from schema version %d", v)
		}
	}
	if err := txn.Set([]byte(keySchema), []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return fmt.Errorf("store: migrate schema from version %d: %w", from, err)
	}
	return nil
}

func isEmpty(txn *badger.Txn) bool {
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
	defer it.Close()
	it.Rewind()
	return !it.Valid()
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if s.stopGC != nil {
		close(s.stopGC)
		<-s.gcDone
	}
	if s.loaded != nil {
		<-s.loaded
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Update runs fn in a read-write transaction and commits it. A conflict
// with a concurrent writer retries fn a few times.
func (s *Store) Update(ctx context.Context, fn func(*Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := &Txn{txn: s.db.NewTransaction(true), addrs: s.addrs, buffers: &s.buffers}
		err := fn(t)
		if err == nil {
			err = s.commit(t)
		}
		t.discard()
		t.recycle()
		if errors.Is(err, badger.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

// UpdateAsync runs fn in a new transaction and hands the commit to
// Badger's writer without waiting for it, so the caller can build its
// next transaction while this one is written. done receives the commit's
// outcome, from another goroutine; a conflicting commit is retried with
// Update before done is called.
func (s *Store) UpdateAsync(ctx context.Context, fn func(*Txn) error, done func(error)) {
	if err := ctx.Err(); err != nil {
		done(err)
		return
	}
	t := &Txn{txn: s.db.NewTransaction(true), addrs: s.addrs, buffers: &s.buffers}
	if err := fn(t); err != nil {
		t.discard()
		t.recycle()
		done(err)
		return
	}
	if t.addrs != nil {
		t.addrs.announce(t)
	}
	s.commitAsync(t, func(err error) {
		t.recycle()
		if errors.Is(err, badger.ErrConflict) {
			err = s.Update(ctx, fn)
		}
		done(err)
	})
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(*Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(&Txn{txn: txn}) })
}

// IsTxnTooBig reports whether err means a transaction must be split.
func IsTxnTooBig(err error) bool { return errors.Is(err, badger.ErrTxnTooBig) }

// CollectGarbage reclaims value-log space until nothing is left to rewrite.
func (s *Store) CollectGarbage() {
	for s.db.RunValueLogGC(0.5) == nil {
	}
}

// Dir returns where the database lives ("" when in memory).
func (s *Store) Dir() string {
	if s.db.Opts().InMemory {
		return ""
	}
	return filepath.Clean(s.db.Opts().Dir)
}

type badgerLogger struct{ l hclog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Trace(fmt.Sprintf(f, a...)) }
