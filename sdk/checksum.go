package sdk

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// A pinned binary is checked before every start. Reading and hashing a
// 12 MB binary costs about 12 ms, a quarter of a start, so a Launcher
// remembers the checksum of a binary it has read together with the file's
// identity (fileID: device, inode, size, modification and change time),
// and only a file whose identity is the remembered one is taken as
// unchanged. Why that cannot let a changed binary through:
//
//   - A new file at the path (installed by rename, or deleted and written
//     anew) is another inode, so another (device, inode). An inode number
//     is reused only after the remembered file is gone, by a file created
//     later, whose change time is later than the remembered one (below).
//   - A file rewritten in place keeps its inode, but every write sets its
//     change time (ctime) to the current time. mtime can be set back with
//     utimes(2); ctime cannot, short of root changing the clock, and
//     utimes itself sets ctime. Truncating or chmod also sets it.
//   - A file's times have a granularity: the kernel's clock tick, a
//     second or two on some file systems. A write in the same tick as the
//     one before it leaves ctime as it was. So, like git with a "racily
//     clean" index entry, the checksum is only remembered when the file's
//     ctime and mtime lie at least settleTime before the read began: any
//     write after the read then sets a later ctime. A file written moments
//     ago is read in full at every start until it has settled.
//   - A write while the file is being read changes its identity between
//     the fstat before and the one after; that start is refused.
//
// The identity and the checksum both come from one open file, so they
// describe the same inode. What remains is the moment between this check
// and the exec, by path, as with go-plugin's SecureConfig: a plugin_dir
// that others can write to is unsafe with or without a pin.

// settleTime is how old a file's change time must be, when its checksum
// is computed, for the checksum to be remembered: above the coarsest time
// granularity of Linux file systems (2 s, FAT) plus the clock tick.
const settleTime = 3 * time.Second

// fileID identifies one version of a file without reading it.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // Unix nanoseconds
}

// settled reports whether no later write can leave id as it is: see above.
func (id fileID) settled(readAt time.Time, settle time.Duration) bool {
	limit := readAt.Add(-settle).UnixNano()
	return id.ctime < limit && id.mtime < limit
}

type verifiedFile struct {
	id  fileID
	sum [sha256.Size]byte
}

// checksum is the sha256 of the file at path, remembered by its identity.
func (l *Launcher) checksum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	id, known, err := identify(f)
	if err != nil {
		return sum, err
	}
	l.mu.Lock()
	v, ok := l.sums[path]
	settle := l.settle
	l.mu.Unlock()
	if known && ok && v.id == id {
		return v.sum, nil
	}
	if settle == 0 {
		settle = settleTime
	}
	readAt := time.Now()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	h.Sum(sum[:0])
	after, _, err := identify(f)
	if err != nil {
		return sum, err
	}
	if after != id {
		return sum, errors.New(path + " changed while its checksum was computed; not started")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hashed++
	if known && id.settled(readAt, settle) {
		if l.sums == nil {
			l.sums = map[string]verifiedFile{}
		}
		l.sums[path] = verifiedFile{id: id, sum: sum}
	} else {
		delete(l.sums, path)
	}
	return sum, nil
}
