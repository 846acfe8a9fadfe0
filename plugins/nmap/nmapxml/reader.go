package nmapxml

import (
	"errors"
	"io"
	"math"
	"strconv"
)

// Options tune a Reader. The zero value is the default.
type Options struct {
	// MaxTokenSize bounds one tag, comment or kept text, in bytes
	// (default DefaultMaxTokenSize).
	MaxTokenSize int
	// Progress, when set, is called for every <taskprogress>.
	Progress func(TaskProgress)
	// Partial makes ReadAll return the hosts read before an error
	// together with it. Without it an error comes with no hosts.
	Partial bool
	// Lean reads only what tells hosts, ports and services apart:
	// status state, addresses, host names, extraports state and count,
	// ports' protocol, number and state, service name, product, version,
	// extra info and tunnel, OS matches, script ids and outputs. The rest
	// (reasons, TTLs, times, CPEs, service method, confidence and
	// fingerprints, extrareasons, OS classes, ports used and fingerprints,
	// uptime, distance) is checked for well-formedness but not decoded,
	// so malformed numbers there go unnoticed; it is faster.
	Lean bool
}

// maxIntern bounds the string table: a scan repeats a few hundred
// distinct short values; addresses and banners are not worth keeping.
const (
	maxIntern    = 8192
	maxInternLen = 64
)

// Reader reads nmap XML host by host.
type Reader struct {
	lx      *lexer
	opts    Options
	run     Run
	started bool
	err     error // sticky: io.EOF after </nmaprun>, or the first error
	intern  map[string]string
	buf     []byte
	into    *Host // NextInto's host
	cache   [512]string
}

// NewReader returns a Reader of r. It reads nothing until Next.
func NewReader(r io.Reader, opts Options) *Reader {
	return &Reader{lx: newLexer(r, opts.MaxTokenSize), opts: opts, intern: make(map[string]string, 256)}
}

// Run returns what was read about the scan so far; after Next returned
// io.EOF it is complete. The caller must not keep it past further Next
// calls if it modifies it.
func (r *Reader) Run() *Run { return &r.run }

// Started reports whether the root element <nmaprun> was read: an error
// before it means the input was not nmap XML at all (or empty).
func (r *Reader) Started() bool { return r.started }

// Offset is how many bytes of the input were read as tokens so far.
func (r *Reader) Offset() int64 { return r.lx.offset() }

// Next returns the next host. After the last host it reads the rest of
// <nmaprun> (runstats) and returns io.EOF once </nmaprun> was read; what
// follows the root element is not read (see Finish). Any other error is
// final: a *SyntaxError, or the underlying reader's error wrapped.
func (r *Reader) Next() (*Host, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.next()
	if err != nil {
		r.err = err
	}
	return h, err
}

// NextInto is Next reading into h, which it overwrites: the slices of the
// previous host are reused, so a loop over a large scan allocates little
// more than the strings. Nothing of h's previous contents may be kept
// across the call.
func (r *Reader) NextInto(h *Host) error {
	if r.err != nil {
		return r.err
	}
	*h = Host{
		Addresses: h.Addresses[:0], Hostnames: h.Hostnames[:0], ExtraPorts: h.ExtraPorts[:0], Ports: h.Ports[:0],
		HostScripts: h.HostScripts[:0],
		OS:          OS{PortsUsed: h.OS.PortsUsed[:0], Matches: h.OS.Matches[:0], Fingerprints: h.OS.Fingerprints[:0]},
	}
	r.into = h
	_, err := r.next()
	r.into = nil
	if err != nil {
		r.err = err
	}
	return err
}

// Finish checks that nothing but white space, comments and processing
// instructions follows </nmaprun>, reading the input to its end. Call it
// after Next returned io.EOF when the input is a file.
func (r *Reader) Finish() error {
	if r.err != io.EOF {
		if r.err == nil {
			return errors.New("nmap XML: Finish called before the last host was read")
		}
		return r.err
	}
	if err := r.lx.next(); err != nil {
		return err
	}
	return nil // the lexer returns nothing but tokEOF after the root
}

// Scan is a whole document read by ReadAll.
type Scan struct {
	Run   Run
	Hosts []Host
}

// ReadAll reads a whole document, including the check of Finish. It is for
// tests and small inputs: it keeps every host in memory.
func ReadAll(in io.Reader, opts Options) (*Scan, error) {
	r := NewReader(in, opts)
	s := &Scan{}
	for {
		h, err := r.Next()
		if err == nil {
			s.Hosts = append(s.Hosts, *h)
			continue
		}
		if err == io.EOF {
			err = r.Finish()
		}
		s.Run = r.run
		if err != nil && !opts.Partial {
			return nil, err
		}
		return s, err
	}
}

func (r *Reader) next() (*Host, error) {
	lx := r.lx
	if !r.started {
		if err := lx.next(); err != nil {
			return nil, err
		}
		if lx.kind != tokStart {
			return nil, lx.errAt(lx.tokOff, nil, "expected <nmaprun>, found the end of input")
		}
		if string(lx.name) != "nmaprun" {
			return nil, lx.errAt(lx.tokOff, nil, "expected <nmaprun>, found <%s>", clip(lx.name))
		}
		r.started = true
		if err := r.nmaprun(); err != nil {
			return nil, err
		}
		if lx.selfClose {
			return nil, io.EOF
		}
	}
	for {
		kind, err := r.child()
		if err != nil {
			return nil, err
		}
		if kind == tokEnd {
			return nil, io.EOF
		}
		switch string(lx.name) {
		case "host":
			h := r.into
			if h == nil {
				h = &Host{}
			}
			if err := r.host(h); err != nil {
				return nil, err
			}
			return h, nil
		case "scaninfo":
			err = r.scaninfo()
		case "verbose":
			r.run.Verbose, err = r.intAttr("level")
			if err == nil {
				err = r.skip()
			}
		case "debugging":
			r.run.Debugging, err = r.intAttr("level")
			if err == nil {
				err = r.skip()
			}
		case "target":
			var t Target
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "specification":
					t.Specification, err = r.str(a)
				case "status":
					t.Status, err = r.istr(a)
				case "reason":
					t.Reason, err = r.istr(a)
				}
				if err != nil {
					return nil, err
				}
			}
			r.run.Targets = append(r.run.Targets, t)
			err = r.skip()
		case "taskprogress":
			err = r.taskprogress()
		case "prescript":
			r.run.PreScripts, err = r.scripts(r.run.PreScripts)
		case "postscript":
			r.run.PostScripts, err = r.scripts(r.run.PostScripts)
		case "runstats":
			err = r.runstats()
		default:
			// hosthint, taskbegin, taskend, output and whatever a newer
			// nmap adds.
			err = r.skip()
		}
		if err != nil {
			return nil, err
		}
	}
}

// child reads up to the next child element of the current element, or
// its end tag, passing over text.
func (r *Reader) child() (tokKind, error) {
	for {
		if err := r.lx.next(); err != nil {
			return 0, err
		}
		switch r.lx.kind {
		case tokStart, tokEnd:
			return r.lx.kind, nil
		case tokEOF:
			// The lexer reports the end only after the root, which
			// would have been the current element's end tag.
			return 0, r.lx.errAt(r.lx.offset(), io.ErrUnexpectedEOF, "input ends inside an element")
		}
	}
}

// skip passes over the element whose start tag was just read.
func (r *Reader) skip() error {
	if r.lx.selfClose {
		return nil
	}
	depth := r.lx.depth()
	for {
		if err := r.lx.next(); err != nil {
			return err
		}
		if r.lx.kind == tokEnd && r.lx.depth() < depth {
			return nil
		}
	}
}

// text reads the character data of the element whose start tag was just
// read, which must hold no elements.
func (r *Reader) text() (string, error) {
	if r.lx.selfClose {
		return "", nil
	}
	lx := r.lx
	lx.keepText = true
	defer func() { lx.keepText = false }()
	r.buf = r.buf[:0]
	for {
		if err := lx.next(); err != nil {
			return "", err
		}
		switch lx.kind {
		case tokText:
			if len(r.buf)+len(lx.text) > lx.maxToken {
				return "", lx.errAt(lx.textOff, ErrLimit, "text longer than %d bytes", lx.maxToken)
			}
			if lx.textAmp {
				var err error
				if r.buf, err = lx.unescape(r.buf, lx.text, lx.textOff); err != nil {
					return "", err
				}
			} else {
				r.buf = append(r.buf, lx.text...)
			}
		case tokStart:
			return "", lx.errAt(lx.tokOff, nil, "expected text, found <%s>", clip(lx.name))
		case tokEnd:
			return r.intern1(r.buf), nil
		}
	}
}

func (r *Reader) nmaprun() error {
	var err error
	for i := range r.lx.attrs {
		a := &r.lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "scanner":
			r.run.Scanner, err = r.str(a)
		case "args":
			r.run.Args, err = r.str(a)
		case "start":
			r.run.Start, err = r.int64(a)
		case "startstr":
			r.run.StartStr, err = r.str(a)
		case "version":
			r.run.Version, err = r.str(a)
		case "xmloutputversion":
			r.run.XMLOutputVersion, err = r.str(a)
		case "profile_name":
			r.run.ProfileName, err = r.str(a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) scaninfo() error {
	var s ScanInfo
	var err error
	for i := range r.lx.attrs {
		a := &r.lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "type":
			s.Type, err = r.istr(a)
		case "protocol":
			s.Protocol, err = r.istr(a)
		case "numservices":
			s.NumServices, err = r.int(a)
		case "services":
			s.Services, err = r.str(a)
		case "scanflags":
			s.ScanFlags, err = r.str(a)
		}
		if err != nil {
			return err
		}
	}
	r.run.ScanInfo = append(r.run.ScanInfo, s)
	return r.skip()
}

func (r *Reader) taskprogress() error {
	var t TaskProgress
	var err error
	for i := range r.lx.attrs {
		a := &r.lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "task":
			t.Task, err = r.istr(a)
		case "time":
			t.Time, err = r.int64(a)
		case "percent":
			t.Percent, err = r.float(a)
		case "remaining":
			t.Remaining, err = r.int64(a)
		case "etc":
			t.Etc, err = r.int64(a)
		}
		if err != nil {
			return err
		}
	}
	if r.opts.Progress != nil {
		r.opts.Progress(t)
	}
	return r.skip()
}

func (r *Reader) runstats() error {
	if r.lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		switch string(r.lx.name) {
		case "finished":
			f := &Finished{}
			for i := range r.lx.attrs {
				a := &r.lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "time":
					f.Time, err = r.int64(a)
				case "timestr":
					f.TimeStr, err = r.str(a)
				case "summary":
					f.Summary, err = r.str(a)
				case "elapsed":
					f.Elapsed, err = r.str(a)
				case "exit":
					f.Exit, err = r.str(a)
				case "errormsg":
					f.ErrorMsg, err = r.str(a)
				}
				if err != nil {
					return err
				}
			}
			r.run.Finished = f
		case "hosts":
			h := &HostStats{}
			for i := range r.lx.attrs {
				a := &r.lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "up":
					h.Up, err = r.int(a)
				case "down":
					h.Down, err = r.int(a)
				case "total":
					h.Total, err = r.int(a)
				}
				if err != nil {
					return err
				}
			}
			r.run.HostStats = h
		}
		if err := r.skip(); err != nil {
			return err
		}
	}
}

func (r *Reader) host(h *Host) error {
	lx := r.lx
	var err error
	for i := range lx.attrs {
		a := &lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "starttime":
			h.StartTime, err = r.int64(a)
		case "endtime":
			h.EndTime, err = r.int64(a)
		case "comment":
			h.Comment, err = r.str(a)
		}
		if err != nil {
			return err
		}
	}
	if lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		switch string(lx.name) {
		case "status":
			for i := range lx.attrs {
				if _, err = r.stateAttr(&lx.attrs[i], &h.Status.State, &h.Status.Reason, &h.Status.ReasonTTL); err != nil {
					return err
				}
			}
			err = r.skip()
		case "address":
			var ad Address
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "addr":
					ad.Addr, err = r.str(a)
				case "addrtype":
					ad.AddrType, err = r.istr(a)
				case "vendor":
					ad.Vendor, err = r.istr(a)
				}
				if err != nil {
					return err
				}
			}
			if h.Addresses == nil {
				h.Addresses = make([]Address, 0, 2)
			}
			h.Addresses = append(h.Addresses, ad)
			err = r.skip()
		case "hostnames":
			err = r.hostnames(h)
		case "ports":
			err = r.ports(h)
		case "os":
			err = r.os(&h.OS)
		case "hostscript":
			h.HostScripts, err = r.scripts(h.HostScripts)
		case "uptime", "distance", "times":
			if r.opts.Lean {
				err = r.skip()
				break
			}
			err = r.hostDetail(h)
		default:
			// tcpsequence, ipidsequence, tcptssequence, trace, smurf
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

// hostDetail reads <uptime>, <distance> or <times>.
func (r *Reader) hostDetail(h *Host) (err error) {
	lx := r.lx
	switch string(lx.name) {
	case "uptime":
		for i := range lx.attrs {
			a := &lx.attrs[i]
			switch string(r.lx.an(a)) {
			case "seconds":
				h.Uptime.Seconds, err = r.int64(a)
			case "lastboot":
				h.Uptime.LastBoot, err = r.str(a)
			}
			if err != nil {
				return err
			}
		}
	case "distance":
		if h.Distance, err = r.intAttr("value"); err != nil {
			return err
		}
	case "times":
		for i := range lx.attrs {
			a := &lx.attrs[i]
			switch string(r.lx.an(a)) {
			case "srtt":
				h.Times.SRTT, err = r.istr(a)
			case "rttvar":
				h.Times.RTTVar, err = r.istr(a)
			case "to":
				h.Times.To, err = r.istr(a)
			}
			if err != nil {
				return err
			}
		}
	}
	return r.skip()
}

func (r *Reader) hostnames(h *Host) error {
	lx := r.lx
	if lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		if string(lx.name) == "hostname" {
			var n Hostname
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "name":
					n.Name, err = r.str(a)
				case "type":
					n.Type, err = r.istr(a)
				}
				if err != nil {
					return err
				}
			}
			h.Hostnames = append(h.Hostnames, n)
		}
		if err := r.skip(); err != nil {
			return err
		}
	}
}

func (r *Reader) ports(h *Host) error {
	lx := r.lx
	if lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		switch string(lx.name) {
		case "port":
			if h.Ports == nil {
				h.Ports = make([]Port, 0, 4)
			}
			h.Ports = grow(h.Ports)
			p := &h.Ports[len(h.Ports)-1]
			// A reused element keeps its nested slices' memory.
			*p = Port{Scripts: p.Scripts[:0], Service: Service{CPEs: p.Service.CPEs[:0]}}
			err = r.port(p)
		case "extraports":
			h.ExtraPorts = grow(h.ExtraPorts)
			e := &h.ExtraPorts[len(h.ExtraPorts)-1]
			*e = ExtraPorts{Reasons: e.Reasons[:0]}
			err = r.extraports(e)
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (r *Reader) extraports(e *ExtraPorts) error {
	lx := r.lx
	var err error
	for i := range lx.attrs {
		a := &lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "state":
			e.State, err = r.istr(a)
		case "count":
			e.Count, err = r.int(a)
		}
		if err != nil {
			return err
		}
	}
	if lx.selfClose || r.opts.Lean {
		return r.skip()
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		if string(lx.name) == "extrareasons" {
			var x ExtraReasons
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "reason":
					x.Reason, err = r.istr(a)
				case "count":
					x.Count, err = r.int(a)
				case "proto":
					x.Proto, err = r.istr(a)
				case "ports":
					x.Ports, err = r.istr(a)
				}
				if err != nil {
					return err
				}
			}
			e.Reasons = append(e.Reasons, x)
		}
		if err := r.skip(); err != nil {
			return err
		}
	}
}

func (r *Reader) port(p *Port) error {
	lx := r.lx
	var err error
	for i := range lx.attrs {
		a := &lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "protocol":
			p.Protocol, err = r.istr(a)
		case "portid":
			p.ID, err = r.port16(a)
		}
		if err != nil {
			return err
		}
	}
	if lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		switch string(lx.name) {
		case "state":
			for i := range lx.attrs {
				a := &lx.attrs[i]
				var known bool
				known, err = r.stateAttr(a, &p.State.State, &p.State.Reason, &p.State.ReasonTTL)
				if err == nil && !known && !r.opts.Lean && string(r.lx.an(a)) == "reason_ip" {
					p.State.ReasonIP, err = r.istr(a)
				}
				if err != nil {
					return err
				}
			}
			err = r.skip()
		case "owner":
			p.Owner, err = r.strAttr("name")
			if err == nil {
				err = r.skip()
			}
		case "service":
			err = r.service(&p.Service)
		case "script":
			p.Scripts, err = r.script(p.Scripts)
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

// serviceDetail reads the service attributes Lean leaves out.
func (r *Reader) serviceDetail(s *Service, a *attr) (err error) {
	switch string(r.lx.an(a)) {
	case "method":
		s.Method, err = r.istr(a)
	case "conf":
		s.Conf, err = r.int(a)
	case "ostype":
		s.OSType, err = r.istr(a)
	case "devicetype":
		s.DeviceType, err = r.istr(a)
	case "hostname":
		s.Hostname, err = r.str(a)
	case "servicefp":
		s.ServiceFP, err = r.str(a)
	}
	return err
}

func (r *Reader) service(s *Service) error {
	lx := r.lx
	var err error
	for i := range lx.attrs {
		a := &lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "name":
			s.Name, err = r.istr(a)
		case "product":
			s.Product, err = r.istr(a)
		case "version":
			s.Version, err = r.istr(a)
		case "extrainfo":
			s.ExtraInfo, err = r.istr(a)
		case "tunnel":
			s.Tunnel, err = r.istr(a)
		default:
			if !r.opts.Lean {
				err = r.serviceDetail(s, a)
			}
		}
		if err != nil {
			return err
		}
	}
	if lx.selfClose {
		return nil
	}
	if r.opts.Lean {
		return r.skip()
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		if string(lx.name) == "cpe" {
			var cpe string
			if cpe, err = r.text(); err != nil {
				return err
			}
			s.CPEs = append(s.CPEs, cpe)
			continue
		}
		if err := r.skip(); err != nil {
			return err
		}
	}
}

// scripts reads a <hostscript>, <prescript> or <postscript>.
func (r *Reader) scripts(list []Script) ([]Script, error) {
	if r.lx.selfClose {
		return list, nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return list, err
		}
		if string(r.lx.name) == "script" {
			list, err = r.script(list)
		} else {
			err = r.skip()
		}
		if err != nil {
			return list, err
		}
	}
}

func (r *Reader) script(list []Script) ([]Script, error) {
	var s Script
	var err error
	for i := range r.lx.attrs {
		a := &r.lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "id":
			s.ID, err = r.istr(a)
		case "output":
			s.Output, err = r.str(a)
		}
		if err != nil {
			return list, err
		}
	}
	return append(list, s), r.skip()
}

func (r *Reader) os(o *OS) error {
	lx := r.lx
	if lx.selfClose {
		return nil
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		name := string(lx.name)
		if r.opts.Lean && name != "osmatch" {
			name = ""
		}
		switch name {
		case "portused":
			var p PortUsed
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch string(r.lx.an(a)) {
				case "state":
					p.State, err = r.istr(a)
				case "proto":
					p.Proto, err = r.istr(a)
				case "portid":
					p.ID, err = r.port16(a)
				}
				if err != nil {
					return err
				}
			}
			o.PortsUsed = append(o.PortsUsed, p)
			err = r.skip()
		case "osmatch":
			o.Matches = grow(o.Matches)
			m := &o.Matches[len(o.Matches)-1]
			*m = OSMatch{Classes: m.Classes[:0]}
			err = r.osmatch(m)
		case "osfingerprint":
			var fp string
			if fp, err = r.strAttr("fingerprint"); err == nil {
				o.Fingerprints = append(o.Fingerprints, fp)
				err = r.skip()
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (r *Reader) osmatch(m *OSMatch) error {
	lx := r.lx
	var err error
	for i := range lx.attrs {
		a := &lx.attrs[i]
		switch string(r.lx.an(a)) {
		case "name":
			m.Name, err = r.istr(a)
		case "accuracy":
			m.Accuracy, err = r.int(a)
		case "line":
			m.Line, err = r.int(a)
		}
		if err != nil {
			return err
		}
	}
	if lx.selfClose || r.opts.Lean {
		return r.skip()
	}
	for {
		kind, err := r.child()
		if err != nil || kind == tokEnd {
			return err
		}
		if string(lx.name) != "osclass" {
			if err := r.skip(); err != nil {
				return err
			}
			continue
		}
		var c OSClass
		for i := range lx.attrs {
			a := &lx.attrs[i]
			switch string(r.lx.an(a)) {
			case "type":
				c.Type, err = r.istr(a)
			case "vendor":
				c.Vendor, err = r.istr(a)
			case "osfamily":
				c.Family, err = r.istr(a)
			case "osgen":
				c.Gen, err = r.istr(a)
			case "accuracy":
				c.Accuracy, err = r.int(a)
			}
			if err != nil {
				return err
			}
		}
		if !lx.selfClose {
			for {
				kind, err := r.child()
				if err != nil {
					return err
				}
				if kind == tokEnd {
					break
				}
				if string(lx.name) == "cpe" {
					cpe, err := r.text()
					if err != nil {
						return err
					}
					c.CPEs = append(c.CPEs, cpe)
				} else if err := r.skip(); err != nil {
					return err
				}
			}
		}
		m.Classes = append(m.Classes, c)
	}
}

// grow extends s by one element, reusing capacity (and what the element
// held before, for the caller to reset).
// stateAttr reads one attribute a host's <status> and a port's <state>
// share, and reports whether a was one of them.
func (r *Reader) stateAttr(a *attr, state, reason *string, ttl *int) (known bool, err error) {
	switch string(r.lx.an(a)) {
	case "state":
		*state, err = r.istr(a)
	case "reason":
		if !r.opts.Lean {
			*reason, err = r.istr(a)
		}
	case "reason_ttl":
		if !r.opts.Lean {
			*ttl, err = r.int(a)
		}
	default:
		return false, nil
	}
	return true, err
}

func grow[S ~[]E, E any](s S) S {
	if len(s) < cap(s) {
		return s[:len(s)+1]
	}
	var zero E
	return append(s, zero)
}

// Attribute values.

func (r *Reader) value(a *attr) ([]byte, error) {
	if !a.amp {
		return r.lx.av(a), nil
	}
	var err error
	r.buf, err = r.lx.unescape(r.buf[:0], r.lx.av(a), r.lx.aoff(a))
	return r.buf, err
}

// str is an attribute's value as a new string.
func (r *Reader) str(a *attr) (string, error) {
	v, err := r.value(a)
	return string(v), err
}

// istr is an attribute's value from the string table: for values a scan
// repeats.
func (r *Reader) istr(a *attr) (string, error) {
	v, err := r.value(a)
	if err != nil {
		return "", err
	}
	return r.intern1(v), nil
}

func (r *Reader) intern1(v []byte) string {
	if len(v) > maxInternLen {
		return string(v)
	}
	if len(v) == 0 {
		return ""
	}
	// A direct-mapped cache in front of the map: most values are the
	// same few strings, and comparing is cheaper than hashing.
	k := (uint(len(v))*31 + uint(v[0])*7 + uint(v[len(v)-1])) % uint(len(r.cache))
	if s := r.cache[k]; s == string(v) {
		return s
	}
	s, ok := r.intern[string(v)]
	if !ok {
		s = string(v)
		if len(r.intern) < maxIntern {
			r.intern[s] = s
		}
	}
	r.cache[k] = s
	return s
}

func (r *Reader) strAttr(name string) (string, error) {
	for i := range r.lx.attrs {
		if string(r.lx.an(&r.lx.attrs[i])) == name {
			return r.str(&r.lx.attrs[i])
		}
	}
	return "", nil
}

func (r *Reader) intAttr(name string) (int, error) {
	for i := range r.lx.attrs {
		if string(r.lx.an(&r.lx.attrs[i])) == name {
			return r.int(&r.lx.attrs[i])
		}
	}
	return 0, nil
}

// parseInt reads a decimal integer without allocating; an empty value is
// 0, as with encoding/xml.
func (r *Reader) parseInt(a *attr, min, max int64) (int64, error) {
	v, err := r.value(a)
	if err != nil {
		return 0, err
	}
	if len(v) == 0 {
		return 0, nil
	}
	neg := false
	digits := v
	if digits[0] == '-' || digits[0] == '+' {
		neg = digits[0] == '-'
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, r.badNumber(a, v, min, max)
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, r.badNumber(a, v, min, max)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, r.badNumber(a, v, min, max)
	}
	x := int64(n)
	if neg {
		x = -x
	}
	if x < min || x > max {
		return 0, r.badNumber(a, v, min, max)
	}
	return x, nil
}

func (r *Reader) badNumber(a *attr, v []byte, min, max int64) error {
	return r.lx.errAt(r.lx.aoff(a), nil, "expected an integer from %d to %d in attribute %s, found %q", min, max, r.lx.an(a), clip(v))
}

func (r *Reader) int(a *attr) (int, error) {
	n, err := r.parseInt(a, math.MinInt32, math.MaxInt32)
	return int(n), err
}

func (r *Reader) int64(a *attr) (int64, error) {
	return r.parseInt(a, math.MinInt64, math.MaxInt64)
}

func (r *Reader) port16(a *attr) (uint16, error) {
	n, err := r.parseInt(a, 0, math.MaxUint16)
	return uint16(n), err
}

func (r *Reader) float(a *attr) (float64, error) {
	v, err := r.value(a)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, r.lx.errAt(r.lx.aoff(a), nil, "expected a number in attribute %s, found %q", r.lx.an(a), clip(v))
	}
	return f, nil
}
