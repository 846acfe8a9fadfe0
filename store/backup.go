package store

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Backup writes a consistent copy of the whole store to w while it stays
// open for reads and writes: everything committed before the backup
// began, in Badger's backup format.
func (s *Store) Backup(w io.Writer) error {
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// Restore loads a backup into dir, which must not hold a store yet, and
// checks the restored schema as an open would.
func Restore(dir string, r io.Reader, opts Options) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("store: restore into %s: the directory is not empty; restore into a new data_dir", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: restore into %s: %w", dir, err)
	}
	s, err := openDB(dir, opts)
	if err != nil {
		return err
	}
	if err := s.db.Load(r, 256); err != nil {
		s.Close()
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := s.checkSchema(); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}
