package nmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
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
	// scanned holds the ports per protocol nmap's <scaninfo> says it
	// scanned, for imported files.
	scanned map[sdk.Protocol]sdk.PortRanges
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

// parseOutput reads nmap's XML host by host with nmapxml, so memory stays
// flat however large the scan. Full batches are emitted as they fill; the
// remainder is returned in pending. An error is either an *outputError or
// the emitter's.
func parseOutput(ctx context.Context, r io.Reader, emit sdk.Emitter, log hclog.Logger) (scanOutput, error) {
	var out scanOutput
	rd := nmapxml.NewReader(r, nmapxml.Options{Progress: func(p nmapxml.TaskProgress) { logProgress(log, p) }})
	var h nmapxml.Host // reused: observation copies what it keeps
	for {
		err := rd.NextInto(&h)
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, readError(rd, err)
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
	}
	out.complete = true
	run := rd.Run()
	for _, t := range run.Targets {
		// nmap lists the target specifications it could not use.
		if t.Status == "skipped" {
			out.skipped = append(out.skipped, fmt.Sprintf("%q (%s)", t.Specification, t.Reason))
		}
	}
	for _, si := range run.ScanInfo {
		if r, err := sdk.ParsePortRanges(si.Services); err == nil && si.Services != "" {
			if out.scanned == nil {
				out.scanned = map[sdk.Protocol]sdk.PortRanges{}
			}
			p := sdk.Protocol(si.Protocol)
			out.scanned[p] = out.scanned[p].Union(r)
		}
	}
	if f := run.Finished; f != nil {
		out.finished, out.exit, out.errormsg = true, f.Exit, f.ErrorMsg
	}
	if hs := run.HostStats; hs != nil {
		if hs.Total < 0 {
			return out, &outputError{offset: rd.Offset(), msg: fmt.Sprintf("nmap's <hosts> has no valid total (%d)", hs.Total)}
		}
		out.hostsSeen, out.total = true, uint64(hs.Total)
	}
	return out, nil
}

// readError sorts the reader's errors into what runNmap reports.
func readError(rd *nmapxml.Reader, err error) error {
	var syn *nmapxml.SyntaxError
	if !errors.As(err, &syn) {
		// The pipe failed (or was closed on cancellation).
		return &outputError{offset: rd.Offset(), msg: "reading nmap's output failed", err: err}
	}
	switch {
	case !rd.Started() && errors.Is(err, io.ErrUnexpectedEOF):
		return &outputError{offset: syn.Offset, msg: "nmap wrote no <nmaprun> XML: output ended", err: err}
	case !rd.Started():
		return &outputError{offset: syn.Offset, msg: "nmap output is not nmap XML", err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &outputError{offset: syn.Offset, msg: "nmap output ended inside an element (truncated XML)", err: err}
	}
	return &outputError{offset: syn.Offset, msg: "malformed XML from nmap", err: err}
}

// logProgress reports nmap's --stats-every lines, so a CLI can show how
// far a long scan has got.
func logProgress(log hclog.Logger, p nmapxml.TaskProgress) {
	log.Info("nmap progress", "task", p.Task, "percent", p.Percent, "remaining", time.Duration(p.Remaining)*time.Second)
}

// observation converts one nmap host. Hosts nmap did not find up are left
// out: the scope already says they were looked at, and emitting them would
// create assets for every unused address of a range.
func observation(h *nmapxml.Host) (sdk.Observation, bool) {
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
	if h.Distance > 0 {
		o.Facts = map[string]string{"nmap.distance": strconv.Itoa(h.Distance)}
	}
	return o, len(o.Addresses) > 0
}
