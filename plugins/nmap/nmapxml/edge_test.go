package nmapxml_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

func syntaxErr(t *testing.T, err error) *nmapxml.SyntaxError {
	t.Helper()
	var se *nmapxml.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *SyntaxError", err, err)
	}
	return se
}

func TestBadFilesAreRefusedWithOffsetAndReason(t *testing.T) {
	cases := []struct {
		file string
		is   error // nil: malformed, no more specific kind
		msg  string
		at   string // the offset must point at this text in the file
	}{
		{"truncated.xml", io.ErrUnexpectedEOF, "input ends, expected", ""},
		{"invalid-utf8-attr.xml", nmapxml.ErrInvalidChar, "invalid UTF-8 (byte 0xe9)", "\xe9 latin-1"},
		{"invalid-utf8-text.xml", nmapxml.ErrInvalidChar, "invalid UTF-8 (byte 0xff)", "\xff\xfe"},
		{"entity-bomb.xml", nmapxml.ErrEntity, "entity declarations are refused", "<!ENTITY lol "},
		{"entity-external.xml", nmapxml.ErrEntity, "entity declarations are refused", "<!ENTITY xxe"},
		{"undeclared-entity.xml", nmapxml.ErrEntity, "unknown entity &nbsp;", "&nbsp;"},
		{"deep-nesting.xml", nmapxml.ErrLimit, "elements nest deeper than 64", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := readFile(t, "testdata/"+c.file)
			start := time.Now()
			_, err := nmapxml.ReadAll(bytes.NewReader(data), nmapxml.Options{})
			se := syntaxErr(t, err)
			if !strings.Contains(se.Msg, c.msg) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error %q, want %q wrapping %v", err, c.msg, c.is)
			}
			switch {
			case c.at != "":
				if want := int64(bytes.Index(data, []byte(c.at))); se.Offset != want {
					t.Fatalf("offset %d, want %d (%q): %v", se.Offset, want, c.at, err)
				}
			case errors.Is(err, io.ErrUnexpectedEOF):
				if se.Offset != int64(len(data)) {
					t.Fatalf("offset %d, want the end, %d", se.Offset, len(data))
				}
			default:
				if se.Offset <= 0 || se.Offset >= int64(len(data)) {
					t.Fatalf("offset %d outside the input", se.Offset)
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

func TestMalformedDocuments(t *testing.T) {
	const pre = `<nmaprun><host><status state="up"/>`
	cases := []struct {
		name, doc string
		is        error
		msg       string
	}{
		{"empty input", ``, io.ErrUnexpectedEOF, "expected the root element <nmaprun>"},
		{"white space only", " \n\t", io.ErrUnexpectedEOF, "expected the root element"},
		{"text, not XML", `not xml at all`, nil, "expected markup ('<'), found text"},
		{"HTML", `<?xml version="1.0"?><html></html>`, nil, "expected <nmaprun>, found <html>"},
		{"mismatched end tag", pre + `</nmaprun>`, nil, "expected </host>, found </nmaprun>"},
		{"stray end tag", `<nmaprun></nmaprun></host>`, nil, "expected no end tag here"},
		{"second root", `<nmaprun></nmaprun><nmaprun>`, nil, "expected nothing after </nmaprun>, found another element"},
		{"text after the root", `<nmaprun></nmaprun>junk`, nil, "expected nothing after </nmaprun>, found text"},
		{"port number too large", pre + `<ports><port protocol="tcp" portid="99999"/></ports></host></nmaprun>`, nil, "expected an integer from 0 to 65535 in attribute portid"},
		{"port number not a number", pre + `<ports><port protocol="tcp" portid="22a"/></ports></host></nmaprun>`, nil, `found "22a"`},
		{"unquoted attribute", `<nmaprun scanner=nmap>`, nil, "expected a quoted value for attribute scanner"},
		{"attribute without value", `<nmaprun scanner>`, nil, "expected '=' after attribute scanner"},
		{"attributes run together", `<nmaprun a="1"b="2">`, nil, "expected white space, '>' or '/>'"},
		{"'<' in a value", `<nmaprun args="a<b">`, nil, "found '<'"},
		{"bare ampersand", `<nmaprun args="a & b"></nmaprun>`, nil, "expected a reference such as &amp;"},
		{"reference to NUL", `<nmaprun args="&#0;"></nmaprun>`, nmapxml.ErrInvalidChar, "&#0; is not a character XML allows"},
		{"reference to a surrogate", `<nmaprun args="&#xD800;"></nmaprun>`, nmapxml.ErrInvalidChar, "is not a character XML allows"},
		{"control character", "<nmaprun args=\"a\x01b\"></nmaprun>", nmapxml.ErrInvalidChar, "control character 0x01"},
		{"U+FFFE", "<nmaprun args=\"\uFFFE\"></nmaprun>", nmapxml.ErrInvalidChar, "U+FFFE"},
		{"double hyphen in a comment", `<!-- a -- b --><nmaprun/>`, nil, "expected '-->' after '--'"},
		{"XML declaration later", `<!-- c --><?xml version="1.0"?><nmaprun/>`, nil, "XML declaration only at the very start"},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><nmaprun/>`, nil, `expected encoding UTF-8 (as nmap writes), found "ISO-8859-1"`},
		{"two DOCTYPEs", `<!DOCTYPE nmaprun><!DOCTYPE nmaprun><nmaprun/>`, nil, "expected one DOCTYPE"},
		{"CDATA outside the root", `<![CDATA[x]]><nmaprun/>`, nil, "CDATA section only inside <nmaprun>"},
		{"element inside cpe", pre + `<ports><port protocol="tcp" portid="1"><service name="x"><cpe><b/></cpe></service></port></ports></host></nmaprun>`, nil, "expected text, found <b>"},
		{"unknown markup", `<nmaprun><!ELEMENT x></nmaprun>`, nil, "expected a comment, CDATA section or DOCTYPE after '<!'"},
		{"truncated in a tag", `<nmaprun><host sta`, io.ErrUnexpectedEOF, "input ends, expected the rest of the start tag"},
		{"truncated in a comment", `<nmaprun><!-- a`, io.ErrUnexpectedEOF, "'-->' closing the comment"},
		{"truncated after a host", pre + `</host>`, io.ErrUnexpectedEOF, "expected </nmaprun>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := nmapxml.ReadAll(strings.NewReader(c.doc), nmapxml.Options{})
			se := syntaxErr(t, err)
			if !strings.Contains(err.Error(), c.msg) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error %q, want %q wrapping %v", err, c.msg, c.is)
			}
			if !strings.Contains(err.Error(), "at byte ") || se.Offset < 0 || se.Offset > int64(len(c.doc)) {
				t.Fatalf("error %q: offset %d outside the input", err, se.Offset)
			}
		})
	}
}

// Every proper prefix of a real nmap output is refused as truncated or
// malformed, never read as a whole scan, and names an offset within it.
func TestEveryPrefixOfRealOutputIsRefused(t *testing.T) {
	for _, f := range []string{"testdata/real-connect.xml", "testdata/real-os.xml", "testdata/scripts-os.xml"} {
		data := readFile(t, f)
		end := bytes.LastIndex(data, []byte("</nmaprun>")) + len("</nmaprun>")
		for n := 0; n < end; n++ {
			_, err := nmapxml.ReadAll(bytes.NewReader(data[:n]), nmapxml.Options{})
			se := syntaxErr(t, err)
			if se.Offset > int64(n) || (n > 0 && se.Offset == 0 && !errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Fatalf("%s cut at %d: offset %d: %v", f, n, se.Offset, err)
			}
		}
	}
}

// Buffer boundaries fall anywhere: reading one byte at a time, or with
// the last data arriving together with io.EOF, gives the same result.
func TestResultDoesNotDependOnReadSizes(t *testing.T) {
	for _, f := range append(realFiles(t), "testdata/quoting.xml", "testdata/scripts-os.xml", "testdata/ipv6-mac-hostnames.xml") {
		data := readFile(t, f)
		want := mustJSON(t, readAll(t, data))
		for name, r := range map[string]io.Reader{
			"one byte":    iotest.OneByteReader(bytes.NewReader(data)),
			"half":        iotest.HalfReader(bytes.NewReader(data)),
			"data w/ EOF": iotest.DataErrReader(bytes.NewReader(data)),
		} {
			s, err := nmapxml.ReadAll(r, nmapxml.Options{})
			if err != nil {
				t.Fatalf("%s, %s: %v", f, name, err)
			}
			if got := mustJSON(t, s); !bytes.Equal(got, want) {
				t.Fatalf("%s, %s: %s", f, name, firstDiff(want, got))
			}
		}
	}
}

func TestPartialResultsOnlyWhenAskedFor(t *testing.T) {
	data := readFile(t, "testdata/real-connect.xml")
	cut := data[:bytes.LastIndex(data, []byte("<host "))+10] // inside the second host
	s, err := nmapxml.ReadAll(bytes.NewReader(cut), nmapxml.Options{})
	if s != nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("scan %+v, error %v: want no scan and a truncation", s, err)
	}
	s, err = nmapxml.ReadAll(bytes.NewReader(cut), nmapxml.Options{Partial: true})
	if !errors.Is(err, io.ErrUnexpectedEOF) || s == nil || len(s.Hosts) != 1 || s.Hosts[0].Addresses[0].Addr != "127.0.0.1" || s.Run.Finished != nil {
		t.Fatalf("partial scan %+v, error %v: want the first host and the error", s, err)
	}
}

func TestReaderSurface(t *testing.T) {
	data := readFile(t, "../testdata/loopback-progress.xml")
	var progress []nmapxml.TaskProgress
	r := nmapxml.NewReader(bytes.NewReader(data), nmapxml.Options{Progress: func(p nmapxml.TaskProgress) { progress = append(progress, p) }})
	if r.Started() {
		t.Fatal("started before reading")
	}
	h, err := r.Next()
	if err != nil || h.Addresses[0].Addr != "127.0.0.1" || !r.Started() || r.Run().Args == "" {
		t.Fatalf("host %+v, error %v", h, err)
	}
	if len(progress) != 4 || progress[0] != (nmapxml.TaskProgress{Task: "Connect Scan", Time: 1795549688, Percent: 22.25, Remaining: 4, Etc: 1795549691}) {
		t.Fatalf("progress %+v", progress)
	}
	if r.Run().Finished != nil {
		t.Fatal("runstats before they were read")
	}
	for range 2 { // io.EOF is sticky
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("error %v, want io.EOF", err)
		}
	}
	if f := r.Run().Finished; f == nil || f.Exit != "success" || r.Run().HostStats.Total != 1 {
		t.Fatalf("run %+v", r.Run())
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	r = nmapxml.NewReader(strings.NewReader(`<nmaprun></nmaprun><nmaprun/>`), nmapxml.Options{})
	if _, err := r.Next(); err != io.EOF {
		t.Fatal(err)
	}
	if err := r.Finish(); err == nil || !strings.Contains(err.Error(), "expected nothing after </nmaprun>") {
		t.Fatalf("Finish: %v", err)
	}
	r = nmapxml.NewReader(iotest.ErrReader(errors.New("pipe broke")), nmapxml.Options{})
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "pipe broke") || errors.As(err, new(*nmapxml.SyntaxError)) {
		t.Fatalf("reader error: %v", err)
	}
}

// repeat is an endless (or n-byte) stream of one byte pattern, so that
// tests of huge inputs allocate nothing themselves.
type repeat struct {
	pat []byte
	n   int64
	off int64
}

func (r *repeat) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	i := 0
	for i < len(p) && r.off < r.n {
		c := copy(p[i:], r.pat[r.off%int64(len(r.pat)):])
		if int64(c) > r.n-r.off {
			c = int(r.n - r.off)
		}
		i += c
		r.off += int64(c)
	}
	return i, nil
}

// allocated runs f and returns how many bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHugeInputsAreRefusedQuicklyInBoundedMemory(t *testing.T) {
	const mb = 1 << 20
	cases := []struct {
		name   string
		r      io.Reader
		msg    string
		maxMem uint64
	}{
		{"attribute of 1 GiB", io.MultiReader(strings.NewReader(`<nmaprun args="`), &repeat{pat: []byte("a"), n: 1 << 30}),
			"token longer than 1048576 bytes", 4 * mb},
		{"comment of 1 GiB", io.MultiReader(strings.NewReader(`<nmaprun><!--`), &repeat{pat: []byte("x"), n: 1 << 30}),
			"token longer than", 4 * mb},
		{"kept text of 1 GiB", io.MultiReader(strings.NewReader(`<nmaprun><host><ports><port portid="1"><service><cpe>`), &repeat{pat: []byte("c"), n: 1 << 30}),
			"longer than", 8 * mb},
		{"a million nested elements", io.MultiReader(strings.NewReader(`<nmaprun>`), &repeat{pat: []byte("<table>"), n: 7 << 20}),
			"elements nest deeper than 64", 1 * mb},
		{"a million attributes", io.MultiReader(strings.NewReader(`<nmaprun`), &repeat{pat: []byte(` a="1"`), n: 6 << 20}),
			"more than 256 attributes", 4 * mb},
		{"300 attributes", strings.NewReader(`<nmaprun` + strings.Repeat(` a="1"`, 300) + `>`),
			"more than 256 attributes", 1 * mb},
		{"16 MiB of white space before the root", &repeat{pat: []byte(strings.Repeat(" \n\t", 1000)), n: 16 << 20},
			"expected the root element", 1 * mb}, // refused only at the end, but in constant memory
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			start := time.Now()
			mem := allocated(func() {
				r := nmapxml.NewReader(c.r, nmapxml.Options{MaxTokenSize: 1 << 20})
				_, err = r.Next()
			})
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want %q", err, c.msg)
			}
			if mem > c.maxMem {
				t.Fatalf("allocated %d bytes, want at most %d", mem, c.maxMem)
			}
			if d := time.Since(start); d > 5*time.Second { // generous: -race, 2 shared cores
				t.Fatalf("took %s", d)
			}
		})
	}
}

// Text nobody reads (interactive output, script <elem>s) costs no memory
// however long it is.
func TestLongSkippedTextIsReadInConstantMemory(t *testing.T) {
	doc := io.MultiReader(strings.NewReader(`<nmaprun><output type="interactive">`),
		&repeat{pat: []byte("Nmap scan report for 192.0.2.1 &amp; caf\u00e9 \u4f8b\n"), n: 64 << 20},
		strings.NewReader(`</output></nmaprun>`))
	var err error
	mem := allocated(func() { _, err = nmapxml.ReadAll(doc, nmapxml.Options{MaxTokenSize: 1 << 20}) })
	if err != nil {
		t.Fatal(err)
	}
	if mem > 2<<20 {
		t.Fatalf("allocated %d bytes for 64 MiB of skipped text", mem)
	}
}

// NextInto reuses the host's memory and reads the same as Next.
func TestNextIntoReadsAsNext(t *testing.T) {
	for _, f := range append(realFiles(t), "testdata/scripts-os.xml", "testdata/ipv6-mac-hostnames.xml", "testdata/quoting.xml") {
		data := readFile(t, f)
		want := readAll(t, data)
		r := nmapxml.NewReader(bytes.NewReader(data), nmapxml.Options{})
		var h nmapxml.Host
		for i := 0; ; i++ {
			err := r.NextInto(&h)
			if err == io.EOF {
				if i != len(want.Hosts) {
					t.Fatalf("%s: %d hosts, want %d", f, i, len(want.Hosts))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			// Reused slices are empty rather than nil.
			norm := func(b []byte) string { return strings.ReplaceAll(string(b), "[]", "null") }
			if got, w := norm(mustJSON(t, &h)), norm(mustJSON(t, &want.Hosts[i])); got != w {
				t.Fatalf("%s host %d: %s", f, i, firstDiff([]byte(w), []byte(got)))
			}
		}
	}
}

// Lean reads what it promises, the same as a full read.
func TestLeanReadsTheIdentifyingFields(t *testing.T) {
	for _, f := range append(realFiles(t), "testdata/scripts-os.xml", "testdata/ipv6-mac-hostnames.xml", "testdata/quoting.xml") {
		data := readFile(t, f)
		full := readAll(t, data)
		lean, err := nmapxml.ReadAll(bytes.NewReader(data), nmapxml.Options{Lean: true})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range full.Hosts {
			h := full.Hosts[i]
			h.Status.Reason, h.Status.ReasonTTL = "", 0
			h.Uptime, h.Distance, h.Times = nmapxml.Uptime{}, 0, nmapxml.Times{}
			h.OS.PortsUsed, h.OS.Fingerprints = nil, nil
			for k := range h.OS.Matches {
				h.OS.Matches[k].Classes = nil
			}
			for k := range h.ExtraPorts {
				h.ExtraPorts[k].Reasons = nil
			}
			for k := range h.Ports {
				p := &h.Ports[k]
				p.State = nmapxml.PortState{State: p.State.State}
				v := p.Service
				p.Service = nmapxml.Service{Name: v.Name, Product: v.Product, Version: v.Version, ExtraInfo: v.ExtraInfo, Tunnel: v.Tunnel}
			}
			if got, want := mustJSON(t, lean.Hosts[i]), mustJSON(t, h); !bytes.Equal(got, want) {
				t.Fatalf("%s host %d: %s", f, i, firstDiff(want, got))
			}
		}
	}
}

// Skipped text arriving in tiny reads is still read in linear time.
func TestSkippedTextInTinyReadsIsLinear(t *testing.T) {
	doc := `<nmaprun><output>&` + strings.Repeat("x", 1<<20) + `</output></nmaprun>`
	start := time.Now()
	_, err := nmapxml.ReadAll(iotest.OneByteReader(strings.NewReader(doc)), nmapxml.Options{})
	if err == nil || !strings.Contains(err.Error(), "expected a reference such as &amp;") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}
