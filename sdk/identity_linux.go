package sdk

import (
	"fmt"
	"os"
	"syscall"
)

// identify returns the identity of the open file f (checksum.go).
func identify(f *os.File) (fileID, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, false, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false, nil
	}
	return fileID{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true, nil
}
