package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PrivateDir makes a fresh directory (0700) for secret files, preferring
// memory to disk: under $RUNTIME_DIRECTORY when systemd set one for the
// service (a tmpfs systemd removes when the service stops, even after a
// kill -9), else under /dev/shm when it is writable, else under dataDir.
// getenv is os.Getenv outside tests.
func PrivateDir(dataDir string, getenv func(string) string) (string, error) {
	var parents []string
	// systemd sets a colon-separated list when the unit names several.
	if rd, _, _ := strings.Cut(getenv("RUNTIME_DIRECTORY"), ":"); rd != "" {
		parents = append(parents, rd)
	}
	parents = append(parents, "/dev/shm")
	var errs []error
	for _, p := range parents {
		dir, err := os.MkdirTemp(p, "sollwert-secrets-")
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	if dataDir == "" {
		return "", fmt.Errorf("no directory for secret files: %w", errors.Join(errs...))
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("no directory for secret files: %w", err)
	}
	dir, err := os.MkdirTemp(dataDir, "secrets-")
	if err != nil {
		return "", fmt.Errorf("no directory for secret files: %w", err)
	}
	return dir, nil
}

// writeFile replaces path's content with value atomically: a reader sees
// the old value or the new one, never a part. The file is 0600.
func writeFile(path, value string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(value)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		// The error of a write names the temporary file, never the value.
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
