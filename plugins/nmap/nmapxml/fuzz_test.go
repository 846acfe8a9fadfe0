package nmapxml_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

// FuzzRead feeds the reader arbitrary bytes. It must never panic, must
// allocate in proportion to its input at most, and must come to the same
// result (hosts, or the error's offset and kind) whatever sizes the
// underlying reads have. The seeds are every XML file in testdata.
//
//	go test -run '^$' -fuzz '^FuzzRead$' -fuzztime 30s ./plugins/nmap/nmapxml/
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	more, _ := filepath.Glob("../testdata/*.xml")
	for _, name := range append(files, more...) {
		f.Add(readFile(f, name))
	}
	for _, s := range []string{
		``, `<nmaprun/>`, `<nmaprun><host/></nmaprun>`, `<?xml version="1.0"?><!DOCTYPE nmaprun [<!ELEMENT a ANY>]><nmaprun/>`,
		`<nmaprun a='&#x10FFFF;&#65;'><![CDATA[]]></nmaprun>`, "\xEF\xBB\xBF<nmaprun/>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := nmapxml.Options{MaxTokenSize: 1 << 16}
		var whole *nmapxml.Scan
		var err error
		mem := allocated(func() {
			opts.Partial = true
			whole, err = nmapxml.ReadAll(bytes.NewReader(data), opts)
		})
		if limit := 256*uint64(len(data)) + 2<<20; mem > limit {
			t.Fatalf("allocated %d bytes for %d bytes of input", mem, len(data))
		}
		bytewise, err2 := nmapxml.ReadAll(iotest.OneByteReader(bytes.NewReader(data)), opts)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("whole: %v; byte by byte: %v", err, err2)
		}
		if err != nil {
			var a, b *nmapxml.SyntaxError
			if !errors.As(err, &a) || !errors.As(err2, &b) {
				t.Fatalf("not syntax errors: %v; %v", err, err2)
			}
			if a.Offset != b.Offset || a.Err != b.Err || a.Offset < 0 || a.Offset > int64(len(data)) {
				t.Fatalf("whole: %v; byte by byte: %v", err, err2)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && a.Offset != int64(len(data)) {
				t.Fatalf("truncation at %d, not at the end %d: %v", a.Offset, len(data), err)
			}
		}
		if !bytes.Equal(mustJSON(t, whole), mustJSON(t, bytewise)) {
			t.Fatalf("results differ: %s", firstDiff(mustJSON(t, whole), mustJSON(t, bytewise)))
		}
	})
}
