package nmap

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// batchSize is the most hosts handed to the emitter at once.
const batchSize = 256

// scanOutput is what the XML said about the run as a whole.
type scanOutput struct {
	complete  bool   // </nmaprun> was read
	finished  bool   // <runstats><finished> was read
	exit      string // finished@exit: "success" or "error"
	errormsg  string // finished@errormsg
	hostsSeen bool   // <runstats><hosts> was read
	total     uint64 // hosts@total: addresses nmap looked at
	skipped   []string
	// pending holds the hosts not yet emitted; they go out only once the
	// whole run is known to be good.
	pending []sdk.Observation
}

// outputError is nmap's XML being unreadable: malformed, or ending early.
type outputError struct {
	offset int64
	msg    string
	err    error
}

func (e *outputError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s at byte %d: %v", e.msg, e.offset, e.err)
	}
	return fmt.Sprintf("%s at byte %d", e.msg, e.offset)
}

func (e *outputError) Unwrap() error { return e.err }

// parseOutput reads nmap's XML as a token stream and decodes one <host> at
// a time, so memory stays flat however large the scan. Full batches are
// emitted as they fill; the remainder is returned in pending. An error is
// either an *outputError or the emitter's.
func parseOutput(ctx context.Context, r io.Reader, emit sdk.Emitter, log hclog.Logger) (scanOutput, error) {
	var out scanOutput
	dec := xml.NewDecoder(r)
	sawRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			// While elements are open the decoder reports a syntax error
			// instead, so only output that never opened <nmaprun> gets here.
			return out, &outputError{offset: dec.InputOffset(), msg: "nmap wrote no <nmaprun> XML: output ended"}
		}
		if err != nil {
			return out, xmlError(dec.InputOffset(), err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local == "nmaprun" {
				out.complete = true
				return out, nil
			}
		case xml.StartElement:
			if !sawRoot {
				if t.Name.Local != "nmaprun" {
					return out, &outputError{offset: dec.InputOffset(), msg: fmt.Sprintf("nmap output starts with <%s>, not <nmaprun>", t.Name.Local)}
				}
				sawRoot = true
				continue
			}
			switch t.Name.Local {
			case "host":
				var h nmaplib.Host
				if err := dec.DecodeElement(&h, &t); err != nil {
					return out, xmlError(dec.InputOffset(), err)
				}
				if obs, ok := observation(&h); ok {
					out.pending = append(out.pending, obs)
				}
				if len(out.pending) >= batchSize {
					if err := emit.Emit(ctx, out.pending); err != nil {
						return out, fmt.Errorf("nmap: hand over hosts: %w", err)
					}
					out.pending = nil
				}
			case "taskprogress":
				logProgress(log, t.Attr)
			case "target":
				// nmap lists the target specifications it could not use.
				if attr(t.Attr, "status") == "skipped" {
					out.skipped = append(out.skipped, fmt.Sprintf("%q (%s)", attr(t.Attr, "specification"), attr(t.Attr, "reason")))
				}
			case "finished":
				out.finished = true
				out.exit = attr(t.Attr, "exit")
				out.errormsg = attr(t.Attr, "errormsg")
			case "hosts":
				n, err := strconv.ParseUint(attr(t.Attr, "total"), 10, 64)
				if err != nil {
					return out, &outputError{offset: dec.InputOffset(), msg: "nmap's <hosts> has no valid total", err: err}
				}
				out.hostsSeen, out.total = true, n
			}
		}
	}
}

func xmlError(offset int64, err error) error {
	var syn *xml.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && syn.Msg == "unexpected EOF") {
		return &outputError{offset: offset, msg: "nmap output ended inside an element (truncated XML)", err: err}
	}
	return &outputError{offset: offset, msg: "malformed XML from nmap", err: err}
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// logProgress reports nmap's --stats-every lines, so a CLI can show how
// far a long scan has got.
func logProgress(log hclog.Logger, attrs []xml.Attr) {
	percent, _ := strconv.ParseFloat(attr(attrs, "percent"), 64)
	remaining, _ := strconv.Atoi(attr(attrs, "remaining"))
	log.Info("nmap progress", "task", attr(attrs, "task"), "percent", percent, "remaining", time.Duration(remaining)*time.Second)
}

// observation converts one nmap host. Hosts nmap did not find up are left
// out: the scope already says they were looked at, and emitting them would
// create assets for every unused address of a range.
func observation(h *nmaplib.Host) (sdk.Observation, bool) {
	if h.Status.State != sdk.StatusUp {
		return sdk.Observation{}, false
	}
	o := sdk.Observation{Status: sdk.StatusUp}
	for _, a := range h.Addresses {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: a.Addr, Type: a.AddrType, Vendor: a.Vendor})
	}
	for _, n := range h.Hostnames {
		if n.Name != "" {
			o.Hostnames = append(o.Hostnames, n.Name)
		}
	}
	best := -1
	for i, m := range h.OS.Matches {
		if best < 0 || m.Accuracy > h.OS.Matches[best].Accuracy {
			best = i
		}
	}
	if best >= 0 {
		o.OS = h.OS.Matches[best].Name
	}
	for _, p := range h.Ports {
		o.Services = append(o.Services, sdk.Service{
			Protocol: sdk.Protocol(p.Protocol), Port: p.ID, State: p.State.State,
			Name: p.Service.Name, Product: p.Service.Product, Version: p.Service.Version,
		})
	}
	// Only when nmap measured it (SYN or OS scans): 0 would be ambiguous.
	if h.Distance.Value > 0 {
		o.Facts = map[string]string{"nmap.distance": strconv.Itoa(h.Distance.Value)}
	}
	return o, len(o.Addresses) > 0
}
