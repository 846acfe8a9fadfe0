package nmapxml

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

const (
	// MaxDepth is how deeply elements may nest. nmap's deepest is a script
	// table inside a table inside a script of a port: about ten.
	MaxDepth = 64
	// MaxAttrs is the most attributes one element may carry; nmap's
	// widest (service) has about a dozen.
	MaxAttrs = 256
	// DefaultMaxTokenSize bounds one tag, comment or kept text. The largest
	// nmap writes are script outputs in one attribute, a few kilobytes.
	DefaultMaxTokenSize = 4 << 20
	// readSize is how much is asked of the reader at a time.
	readSize = 64 << 10
	// skipChunk is how much text that is not kept may pile up before the
	// checked part of it is dropped.
	skipChunk = 16 << 10
)

// Errors a *SyntaxError can wrap, besides io.ErrUnexpectedEOF for a
// document that ends early.
var (
	ErrLimit       = errors.New("limit exceeded")
	ErrEntity      = errors.New("entity refused")
	ErrInvalidChar = errors.New("invalid character")
)

// SyntaxError is input that is not the XML nmap writes. Offset counts bytes
// from the start of the input.
type SyntaxError struct {
	Offset int64
	Msg    string
	Err    error // io.ErrUnexpectedEOF, ErrLimit, ErrEntity, ErrInvalidChar or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("nmap XML: at byte %d: %s", e.Offset, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

type tokKind uint8

const (
	tokStart tokKind = iota + 1
	tokEnd
	tokText
	tokEOF
)

// attr is one attribute of the current start tag, as offsets into the
// tag: no pointers, so filling the list costs no write barriers.
type attr struct {
	n0, n1, v0, v1 int32
	amp            bool // the value holds references to decode
}

// an and av are an attribute's name and raw value; aoff is the value's
// offset in the input.
func (l *lexer) an(a *attr) []byte  { return l.tag[a.n0:a.n1] }
func (l *lexer) av(a *attr) []byte  { return l.tag[a.v0:a.v1] }
func (l *lexer) aoff(a *attr) int64 { return l.tokOff + int64(a.v0) }

// lexer splits the input into tokens. A token's byte slices point into buf
// and are valid until the next call of next.
type lexer struct {
	r        io.Reader
	buf      []byte
	pos, end int   // buf[pos:end] is unread
	base     int64 // offset of buf[0] in the input
	rerr     error // the reader's error, once it returned one
	maxToken int

	kind      tokKind
	name      []byte
	tag       []byte // the current start tag
	attrs     []attr
	selfClose bool
	text      []byte // tokText, only when keepText
	textAmp   bool
	textOff   int64
	tokOff    int64 // where the current token began
	keepText  bool  // set by the reader before next: text will be used

	stack  []byte // open element names, concatenated
	marks  []int  // where each open name starts in stack
	seen   bool   // any markup read (an XML declaration must come first)
	root   bool   // the root element was opened
	closed bool   // and closed again
	doct   bool   // a DOCTYPE was read
	bom    bool   // the start was checked for a byte order mark

	scratch []byte
}

func newLexer(r io.Reader, maxToken int) *lexer {
	if maxToken <= 0 {
		maxToken = DefaultMaxTokenSize
	}
	return &lexer{r: r, buf: make([]byte, readSize), maxToken: maxToken}
}

func (l *lexer) offset() int64 { return l.base + int64(l.pos) }

func (l *lexer) errAt(off int64, err error, format string, args ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// truncated is the input ending where more was expected.
func (l *lexer) truncated(expected string) error {
	return l.errAt(l.base+int64(l.end), io.ErrUnexpectedEOF, "input ends, expected %s", expected)
}

// more reads further input, keeping buf[pos:]. It reports false at the
// end of the input.
func (l *lexer) more() (bool, error) {
	if l.rerr != nil {
		if l.rerr == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("nmap XML: read at byte %d: %w", l.base+int64(l.end), l.rerr)
	}
	if l.end-l.pos > l.maxToken {
		return false, l.errAt(l.offset(), ErrLimit, "token longer than %d bytes", l.maxToken)
	}
	if l.pos > 0 && (l.end == len(l.buf) || l.pos >= len(l.buf)/2) {
		n := copy(l.buf, l.buf[l.pos:l.end])
		l.base += int64(l.pos)
		l.end, l.pos = n, 0
	}
	if len(l.buf)-l.end < readSize/4 {
		size := 2 * len(l.buf)
		if size > l.maxToken+readSize {
			size = l.maxToken + readSize
		}
		if size > len(l.buf) {
			nb := make([]byte, size)
			copy(nb, l.buf[:l.end])
			l.buf = nb
		}
	}
	for range 100 {
		n, err := l.r.Read(l.buf[l.end:])
		l.end += n
		if err != nil {
			l.rerr = err
			if n > 0 {
				return true, nil
			}
			if err == io.EOF {
				return false, nil
			}
			return false, fmt.Errorf("nmap XML: read at byte %d: %w", l.base+int64(l.end), err)
		}
		if n > 0 {
			return true, nil
		}
	}
	l.rerr = io.ErrNoProgress
	return false, fmt.Errorf("nmap XML: read at byte %d: %w", l.base+int64(l.end), io.ErrNoProgress)
}

// ensure makes n bytes from pos available; false means the input ends
// before.
func (l *lexer) ensure(n int) (bool, error) {
	for l.end-l.pos < n {
		ok, err := l.more()
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// find returns the index, relative to pos, of pat at or after from,
// reading as much as needed.
func (l *lexer) find(from int, pat []byte, expected string) (int, error) {
	for {
		if i := bytes.Index(l.buf[l.pos+from:l.end], pat); i >= 0 {
			return from + i, nil
		}
		if n := l.end - l.pos - len(pat) + 1; n > from {
			from = n
		}
		ok, err := l.more()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, l.truncated(expected)
		}
	}
}

// next reads the next token: a start or end tag, text inside the root
// element, or the end of the input after the root. Comments, processing
// instructions and the DOCTYPE are checked and passed over.
func (l *lexer) next() error {
	for {
		if l.pos >= l.end {
			ok, err := l.more()
			if err != nil {
				return err
			}
			if !ok {
				return l.atEOF()
			}
		}
		l.tokOff = l.offset()
		if l.tokOff == 0 && !l.bom {
			// A UTF-8 byte order mark may precede everything.
			l.bom = true
			if _, err := l.ensure(3); err != nil {
				return err
			}
			if bytes.HasPrefix(l.buf[l.pos:l.end], []byte("\xEF\xBB\xBF")) {
				l.pos += 3
				continue
			}
		}
		if l.buf[l.pos] != '<' {
			if err := l.scanText(); err != nil {
				return err
			}
			if l.root && !l.closed {
				l.kind = tokText
				return nil
			}
			continue
		}
		ok, err := l.ensure(2)
		if err != nil {
			return err
		}
		if !ok {
			return l.truncated("markup after '<'")
		}
		switch l.buf[l.pos+1] {
		case '/':
			return l.scanEnd()
		case '?':
			if err := l.scanPI(); err != nil {
				return err
			}
		case '!':
			text, err := l.scanBang()
			if err != nil {
				return err
			}
			if text {
				l.kind = tokText
				return nil
			}
		default:
			return l.scanStart()
		}
	}
}

func (l *lexer) atEOF() error {
	switch {
	case !l.root:
		return l.truncated("the root element <nmaprun>")
	case !l.closed:
		return l.truncated(fmt.Sprintf("</%s>", l.top()))
	}
	l.kind = tokEOF
	return nil
}

func (l *lexer) top() []byte {
	if len(l.marks) == 0 {
		return nil
	}
	return l.stack[l.marks[len(l.marks)-1]:]
}

func (l *lexer) depth() int { return len(l.marks) }

// scanText reads character data up to the next '<' or the end of input.
func (l *lexer) scanText() error {
	// Most text in nmap's output is the newline between two tags.
	for i := l.pos; i < l.end && i < l.pos+64; i++ {
		c := l.buf[i]
		if c == '<' {
			if l.root && !l.closed {
				l.text, l.textOff, l.textAmp = l.buf[l.pos:i], l.offset(), false
			}
			l.pos = i
			return nil
		}
		if !isSpace(c) {
			break
		}
	}
	inside := l.root && !l.closed
	keep := l.keepText && inside
	j := 0
	for {
		if k := bytes.IndexByte(l.buf[l.pos+j:l.end], '<'); k >= 0 {
			j += k
			break
		}
		j = l.end - l.pos
		if !keep && j > skipChunk {
			// Check what is there and drop it, so text nobody reads
			// needs no memory however long it is.
			cut := safeCut(l.buf[l.pos : l.pos+j])
			if cut > 0 {
				check := l.checkText
				if !inside {
					check = l.checkSpace
				}
				if err := check(l.buf[l.pos:l.pos+cut], l.offset()); err != nil {
					return err
				}
				l.pos += cut
				j -= cut
			}
		}
		ok, err := l.more()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	text := l.buf[l.pos : l.pos+j]
	off := l.offset()
	l.pos += j
	if !inside {
		return l.checkSpace(text, off)
	}
	if err := l.checkText(text, off); err != nil {
		return err
	}
	l.text, l.textOff = text, off
	l.textAmp = bytes.IndexByte(text, '&') >= 0
	return nil
}

// checkSpace checks text outside the root element: only white space may
// stand between markup there.
func (l *lexer) checkSpace(text []byte, off int64) error {
	for i, c := range text {
		if !isSpace(c) {
			if !l.root {
				return l.errAt(off+int64(i), nil, "expected markup ('<'), found text %q", clip(text[i:]))
			}
			return l.errAt(off+int64(i), nil, "expected nothing after </nmaprun>, found text %q", clip(text[i:]))
		}
	}
	return nil
}

// safeCut is how much of b can be checked on its own: not a reference or
// a UTF-8 sequence that the next read completes.
func safeCut(b []byte) int {
	n := len(b)
	// A reference is at most 12 bytes: an '&' further from the end with
	// no ';' after it is an error the check will report, not a reference
	// the next read completes. Looking only at the end keeps this linear
	// however small the reads.
	if i := bytes.LastIndexByte(b[max(0, n-16):], '&'); i >= 0 {
		if i += max(0, n-16); bytes.IndexByte(b[i:], ';') < 0 {
			n = i
		}
	}
	for k := 1; k <= utf8.UTFMax && k <= n; k++ {
		c := b[n-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[n-k : n]) {
				n -= k
			}
			break
		}
	}
	return n
}

func (l *lexer) checkText(text []byte, off int64) error {
	amp, err := l.checkChars(text, off, false)
	if err != nil {
		return err
	}
	if amp {
		l.scratch, err = l.unescape(l.scratch[:0], text, off)
	}
	return err
}

// checkChars checks that b holds only characters XML allows, and '<'
// nowhere when inAttr. It reports whether b holds an '&'.
func (l *lexer) checkChars(b []byte, off int64, inAttr bool) (amp bool, err error) {
	i := 0
	// Eight bytes at a time while they are plain printable ASCII without
	// '&' or '<'.
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		amps, lts := w^(lo*'&'), w^(lo*'<')
		if (w|((w-lo*0x20)&^w)|((amps-lo)&^amps)|((lts-lo)&^lts))&hi != 0 {
			break
		}
	}
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c < utf8.RuneSelf {
			if c == '&' {
				amp = true
			} else if c == '<' && inAttr {
				return amp, l.errAt(off+int64(i), nil, "expected an attribute value, found '<'")
			}
			i++
			continue
		}
		if c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		if c < 0x20 {
			return amp, l.errAt(off+int64(i), ErrInvalidChar, "control character %#02x is not allowed in XML", c)
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return amp, l.errAt(off+int64(i), ErrInvalidChar, "invalid UTF-8 (byte %#02x)", c)
		}
		if r == 0xFFFE || r == 0xFFFF {
			return amp, l.errAt(off+int64(i), ErrInvalidChar, "character U+%04X is not allowed in XML", r)
		}
		i += size
	}
	return amp, nil
}

// unescape appends src with its references replaced to dst.
func (l *lexer) unescape(dst, src []byte, off int64) ([]byte, error) {
	for {
		i := bytes.IndexByte(src, '&')
		if i < 0 {
			return append(dst, src...), nil
		}
		dst = append(dst, src[:i]...)
		off += int64(i)
		src = src[i:]
		semi := bytes.IndexByte(src, ';')
		if semi < 0 || semi > 12 {
			return dst, l.errAt(off, nil, "expected a reference such as &amp; after '&', found %q", clip(src))
		}
		ref := src[1:semi]
		switch string(ref) {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			if len(ref) < 2 || ref[0] != '#' {
				return dst, l.errAt(off, ErrEntity, "unknown entity &%s; (nmap output declares none)", ref)
			}
			r, ok := charRef(ref[1:])
			if !ok {
				return dst, l.errAt(off, ErrInvalidChar, "character reference &%s; is not a character XML allows", ref)
			}
			dst = utf8.AppendRune(dst, r)
		}
		src = src[semi+1:]
		off += int64(semi + 1)
	}
}

func charRef(num []byte) (rune, bool) {
	base := int64(10)
	if len(num) > 0 && num[0] == 'x' {
		base, num = 16, num[1:]
	}
	if len(num) == 0 || len(num) > 8 {
		return 0, false
	}
	var v int64
	for _, c := range num {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + d
	}
	r := rune(v)
	ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
	return r, ok
}

// nameChar marks the ASCII bytes that may appear in a name: 1 anywhere,
// 2 not first. Bytes from 0x80 up are checked as UTF-8 with the text.
var nameChar = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	t['_'], t[':'], t['-'], t['.'] = 1, 1, 2, 2
	for c := 0x80; c < 256; c++ {
		t[c] = 1
	}
	return t
}()

// valueByte marks the bytes an attribute value scan must look at: the
// quotes, '&', '<', control characters and everything from 0x80.
var valueByte = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = 1
	}
	t['\t'], t['\n'], t['\r'] = 0, 0, 0
	t['"'], t['\''], t['&'], t['<'] = 1, 1, 1, 1
	for c := 0x80; c < 256; c++ {
		t[c] = 1
	}
	return t
}()

// scanName returns the length of the name at b[i:], 0 if there is none.
func scanName(b []byte, i int) int {
	if i >= len(b) || nameChar[b[i]] != 1 {
		return 0
	}
	j := i + 1
	for j < len(b) && nameChar[b[j]] != 0 {
		j++
	}
	return j - i
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// tagEnd finds the '>' closing the tag at pos, outside quoted values.
func (l *lexer) tagEnd(expected string) (int, error) {
	j := 1
	var quote byte
	for {
		b := l.buf[l.pos:l.end]
		for j < len(b) {
			if quote != 0 {
				k := bytes.IndexByte(b[j:], quote)
				if k < 0 {
					j = len(b)
					break
				}
				j += k + 1
				quote = 0
				continue
			}
			c := b[j]
			if c == '>' {
				return j, nil
			}
			if c == '"' || c == '\'' {
				quote = c
			}
			j++
		}
		ok, err := l.more()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, l.truncated(expected)
		}
	}
}

// errNeedMore is parseStart running out of buffered input.
var errNeedMore = errors.New("need more input")

// scanStart reads a start tag. It parses what is buffered and, should the
// tag go on past it, reads on to its end and parses again from its start:
// rare (once per buffer fill), and it keeps the common path free of calls
// to the reader.
func (l *lexer) scanStart() error {
	if l.closed {
		return l.errAt(l.offset(), nil, "expected nothing after </nmaprun>, found another element")
	}
	for tries := 0; ; tries++ {
		n, err := l.parseStart(l.buf[l.pos:l.end], l.offset())
		if err == errNeedMore && tries == 0 {
			// Read up to the '>' first, in one linear pass, so that a tag
			// arriving in many small reads is parsed twice, not once per
			// read.
			if _, err := l.tagEnd("the rest of the start tag"); err != nil {
				// The input ended, or the tag is too long: a syntax
				// error in what is there comes first, as it does when
				// the input arrives in one piece.
				var se *SyntaxError
				if errors.As(err, &se) {
					if _, perr := l.parseStart(l.buf[l.pos:l.end], l.offset()); perr != nil && perr != errNeedMore {
						return perr
					}
				}
				return err
			}
			continue
		}
		if err == errNeedMore {
			ok, err := l.more()
			if err != nil {
				return err
			}
			if !ok {
				return l.truncated("the rest of the start tag")
			}
			continue
		}
		if err != nil {
			return err
		}
		if !l.selfClose {
			if err := l.push(l.name, l.offset()); err != nil {
				return err
			}
		}
		if !l.root {
			l.root = true
			if l.selfClose {
				l.closed = true
			}
		}
		l.seen = true
		l.kind = tokStart
		l.tag = l.buf[l.pos : l.pos+n]
		l.pos += n
		return nil
	}
}

// parseStart parses the start tag at b[0] ('<'), setting name, attrs and
// selfClose, and returns its length.
func (l *lexer) parseStart(b []byte, off int64) (int, error) {
	i := 1
	if i >= len(b) {
		return 0, errNeedMore
	}
	if nameChar[b[i]] != 1 {
		return 0, l.errAt(off+1, nil, "expected an element name after '<', found %q", clip(b[1:]))
	}
	for i++; i < len(b) && nameChar[b[i]] != 0; i++ {
	}
	if i >= len(b) {
		return 0, errNeedMore
	}
	l.name = b[1:i]
	l.attrs = l.attrs[:0]
	l.selfClose = false
	for {
		white := i
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, errNeedMore
		}
		c := b[i]
		if c == '>' {
			return i + 1, nil
		}
		if c == '/' {
			if i+1 >= len(b) {
				return 0, errNeedMore
			}
			if b[i+1] != '>' {
				return 0, l.errAt(off+int64(i+1), nil, "expected '>' after '/' in <%s>, found %q", l.name, clip(b[i+1:]))
			}
			l.selfClose = true
			return i + 2, nil
		}
		if white == i {
			return 0, l.errAt(off+int64(i), nil, "expected white space, '>' or '/>' in <%s>, found %q", l.name, clip(b[i:]))
		}
		n0 := i
		if nameChar[c] != 1 {
			return 0, l.errAt(off+int64(i), nil, "expected an attribute name in <%s>, found %q", l.name, clip(b[i:]))
		}
		for i++; i < len(b) && nameChar[b[i]] != 0; i++ {
		}
		name := b[n0:i]
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, errNeedMore
		}
		if b[i] != '=' {
			return 0, l.errAt(off+int64(i), nil, "expected '=' after attribute %s in <%s>, found %q", name, l.name, clip(b[i:]))
		}
		for i++; i < len(b) && isSpace(b[i]); i++ {
		}
		if i >= len(b) {
			return 0, errNeedMore
		}
		q := b[i]
		if q != '"' && q != '\'' {
			return 0, l.errAt(off+int64(i), nil, "expected a quoted value for attribute %s in <%s>, found %q", name, l.name, clip(b[i:]))
		}
		// The value, up to the closing quote, checked in the same pass:
		// plain bytes by table, the rest one by one.
		j := i + 1
		amp := false
		for {
			for j < len(b) && valueByte[b[j]] == 0 {
				j++
			}
			if j >= len(b) {
				return 0, errNeedMore
			}
			c := b[j]
			if c == q {
				break
			}
			switch {
			case c == '"' || c == '\'':
				j++
			case c == '&':
				amp = true
				j++
			case c == '<':
				return 0, l.errAt(off+int64(j), nil, "expected an attribute value, found '<'")
			default: // control characters and UTF-8
				end := j + 1
				for end < len(b) && b[end] >= utf8.RuneSelf {
					end++
				}
				if end >= len(b) {
					return 0, errNeedMore // the sequence may go on
				}
				if _, err := l.checkChars(b[j:end], off+int64(j), true); err != nil {
					return 0, err
				}
				j = end
			}
		}
		k := j - (i + 1)
		if len(l.attrs) == MaxAttrs {
			return 0, l.errAt(off+int64(n0), ErrLimit, "more than %d attributes in <%s>", MaxAttrs, l.name)
		}
		l.attrs = append(l.attrs, attr{n0: int32(n0), n1: int32(n0 + len(name)), v0: int32(i + 1), v1: int32(i + 1 + k), amp: amp})
		i += k + 2
	}
}

func (l *lexer) push(name []byte, off int64) error {
	if len(l.marks) >= MaxDepth {
		return l.errAt(off, ErrLimit, "elements nest deeper than %d", MaxDepth)
	}
	l.marks = append(l.marks, len(l.stack))
	l.stack = append(l.stack, name...)
	return nil
}

func (l *lexer) scanEnd() error {
	off := l.offset()
	// An end tag holds no quotes: the first '>' ends it.
	end, from := -1, 2
	for {
		if k := bytes.IndexByte(l.buf[l.pos+from:l.end], '>'); k >= 0 {
			end = from + k
			break
		}
		from = l.end - l.pos
		ok, err := l.more()
		if err != nil {
			return err
		}
		if !ok {
			return l.truncated("'>' closing the end tag")
		}
	}
	b := l.buf[l.pos : l.pos+end+1]
	n := scanName(b, 2)
	if n == 0 {
		return l.errAt(off+2, nil, "expected an element name after '</', found %q", clip(b[2:]))
	}
	name := b[2 : 2+n]
	for i := 2 + n; i < end; i++ {
		if !isSpace(b[i]) {
			return l.errAt(off+int64(i), nil, "expected '>' after </%s, found %q", name, clip(b[i:]))
		}
	}
	if len(l.marks) == 0 {
		return l.errAt(off, nil, "expected no end tag here, found </%s>", name)
	}
	if top := l.top(); !bytes.Equal(top, name) {
		return l.errAt(off, nil, "expected </%s>, found </%s>", top, name)
	}
	m := l.marks[len(l.marks)-1]
	l.marks = l.marks[:len(l.marks)-1]
	l.stack = l.stack[:m]
	l.name = name
	if len(l.marks) == 0 {
		l.closed = true
	}
	l.kind = tokEnd
	l.pos += end + 1
	return nil
}

func (l *lexer) scanPI() error {
	off := l.offset()
	end, err := l.find(2, []byte("?>"), "'?>' closing the processing instruction")
	if err != nil {
		return err
	}
	b := l.buf[l.pos : l.pos+end]
	n := scanName(b, 2)
	if n == 0 {
		return l.errAt(off+2, nil, "expected a processing instruction name after '<?', found %q", clip(b[2:]))
	}
	target := b[2 : 2+n]
	body := b[2+n:]
	if len(body) > 0 && !isSpace(body[0]) {
		return l.errAt(off+int64(2+n), nil, "expected white space after <?%s, found %q", target, clip(body))
	}
	if _, err := l.checkChars(body, off+int64(2+n), false); err != nil {
		return err
	}
	if bytes.EqualFold(target, []byte("xml")) {
		if !bytes.Equal(target, []byte("xml")) || l.seen || (off != 0 && off != 3) {
			return l.errAt(off, nil, "expected the XML declaration only at the very start of the input")
		}
		if err := l.checkDecl(body, off+int64(2+n)); err != nil {
			return err
		}
	}
	l.seen = true
	l.pos += end + 2
	return nil
}

// checkDecl refuses an XML declaration naming an encoding other than
// UTF-8 (or its subset US-ASCII): reading it as UTF-8 would be wrong.
func (l *lexer) checkDecl(body []byte, off int64) error {
	i := bytes.Index(body, []byte("encoding"))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(body[i+len("encoding"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return l.errAt(off+int64(i), nil, "expected '=' after encoding in the XML declaration")
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
		return l.errAt(off+int64(i), nil, "expected a quoted encoding name in the XML declaration")
	}
	k := bytes.IndexByte(rest[1:], rest[0])
	if k < 0 {
		return l.errAt(off+int64(i), nil, "expected the closing quote of the encoding name")
	}
	enc := rest[1 : 1+k]
	if !bytes.EqualFold(enc, []byte("utf-8")) && !bytes.EqualFold(enc, []byte("us-ascii")) {
		return l.errAt(off+int64(i), nil, "expected encoding UTF-8 (as nmap writes), found %q", enc)
	}
	return nil
}

// scanBang reads a comment, a CDATA section or the DOCTYPE. It reports
// whether it read text (CDATA) for the caller.
func (l *lexer) scanBang() (bool, error) {
	const (
		comment = "<!--"
		cdata   = "<![CDATA["
		doctype = "<!DOCTYPE"
	)
	off := l.offset()
	if _, err := l.ensure(len(cdata)); err != nil {
		return false, err
	}
	avail := l.buf[l.pos:l.end]
	switch {
	case bytes.HasPrefix(avail, []byte(comment)):
		end, err := l.find(len(comment), []byte("--"), "'-->' closing the comment")
		if err != nil {
			return false, err
		}
		if ok, err := l.ensure(end + 3); err != nil {
			return false, err
		} else if !ok {
			return false, l.truncated("'-->' closing the comment")
		}
		if l.buf[l.pos+end+2] != '>' {
			return false, l.errAt(off+int64(end), nil, "expected '-->' after '--' in a comment, found %q", clip(l.buf[l.pos+end:l.end]))
		}
		if _, err := l.checkChars(l.buf[l.pos+len(comment):l.pos+end], off+int64(len(comment)), false); err != nil {
			return false, err
		}
		l.seen = true
		l.pos += end + 3
		return false, nil
	case bytes.HasPrefix(avail, []byte(cdata)):
		if !l.root || l.closed {
			return false, l.errAt(off, nil, "expected a CDATA section only inside <nmaprun>")
		}
		end, err := l.find(len(cdata), []byte("]]>"), "']]>' closing the CDATA section")
		if err != nil {
			return false, err
		}
		text := l.buf[l.pos+len(cdata) : l.pos+end]
		if _, err := l.checkChars(text, off+int64(len(cdata)), false); err != nil {
			return false, err
		}
		l.text, l.textOff, l.textAmp = text, off+int64(len(cdata)), false
		l.pos += end + 3
		return true, nil
	case bytes.HasPrefix(avail, []byte(doctype)):
		if l.root || l.doct {
			return false, l.errAt(off, nil, "expected one DOCTYPE, before the root element")
		}
		return false, l.scanDoctype()
	}
	for _, p := range []string{comment, cdata, doctype} {
		if len(avail) < len(p) && bytes.HasPrefix([]byte(p), avail) {
			return false, l.truncated("a comment, CDATA section or DOCTYPE after '<!'")
		}
	}
	return false, l.errAt(off, nil, "expected a comment, CDATA section or DOCTYPE after '<!', found %q", clip(avail))
}

// scanDoctype reads <!DOCTYPE ...>. nmap writes <!DOCTYPE nmaprun>; an
// internal subset is read over, except that any entity declaration in it
// is refused: none is needed, and it is how entity bombs are built.
func (l *lexer) scanDoctype() error {
	off := l.offset()
	j := len("<!DOCTYPE")
	var quote byte
	subset := false
	for {
		b := l.buf[l.pos:l.end]
		for ; j < len(b); j++ {
			c := b[j]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '[' && !subset:
				subset = true
			case c == ']' && subset:
				subset = false
			case c == '<' && subset:
				if ok, err := l.ensure(j + 8); err != nil {
					return err
				} else if ok && bytes.HasPrefix(l.buf[l.pos+j:l.end], []byte("<!ENTITY")) {
					return l.errAt(off+int64(j), ErrEntity, "entity declarations are refused (nmap output has none)")
				}
				b = l.buf[l.pos:l.end]
			case c == '>' && !subset:
				if _, err := l.checkChars(b[:j], off, false); err != nil {
					return err
				}
				l.doct, l.seen = true, true
				l.pos += j + 1
				return nil
			}
		}
		ok, err := l.more()
		if err != nil {
			return err
		}
		if !ok {
			return l.truncated("'>' closing the DOCTYPE")
		}
	}
}

// clip shortens input quoted in an error message.
func clip(b []byte) string {
	const max = 24
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}
