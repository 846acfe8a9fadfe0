package nmap

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// batchSize is how many hosts go to the emitter at once.
const batchSize = 256

// stderrKeep bounds how much of nmap's stderr is kept for error messages.
const stderrKeep = 64 << 10

// run executes nmap and streams its XML host by host into emit. It
// returns nmap's non-fatal warnings.
func run(ctx context.Context, binary string, args []string, emit sdk.Emitter, log hclog.Logger) ([]string, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	// nmap runs in its own process group so that cancellation reaches any
	// helper it started, and no orphan is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("nmap: %w", err)
	}
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nmap: start %s: %w", binary, err)
	}
	res, parseErr := parse(ctx, stdout, emit, log)
	if parseErr != nil {
		// Stop nmap before waiting: its output is no longer read.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	warnings := stderr.lines()

	switch {
	case ctx.Err() != nil:
		return warnings, fmt.Errorf("nmap: scan stopped before it finished: %w", ctx.Err())
	case parseErr != nil: // before waitErr: a parse error made us kill nmap
		if waitErr != nil {
			return warnings, fmt.Errorf("%w (nmap %v%s)", parseErr, describeExit(waitErr), lastLines(warnings, 3))
		}
		return warnings, parseErr
	case waitErr != nil:
		return warnings, fmt.Errorf("nmap: %v%s", describeExit(waitErr), lastLines(warnings, 5))
	case res.exit != "success":
		msg := res.errmsg
		if msg == "" {
			msg = "nmap reported exit=" + res.exit
		}
		return warnings, fmt.Errorf("nmap: scan failed: %s%s", msg, lastLines(warnings, 5))
	}
	if bad := targetFailures(warnings); bad != "" {
		return warnings, fmt.Errorf("nmap: a target could not be scanned: %s", bad)
	}
	return warnings, nil
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return err.Error()
}

// targetFailures finds the stderr lines with which nmap skips a target but
// still exits 0: the scope would then claim hosts that were never scanned.
func targetFailures(lines []string) string {
	for _, l := range lines {
		for _, marker := range []string{"Failed to resolve", "QUITTING", "Illegal", "is not a valid", "Unable to split netmask"} {
			if strings.Contains(l, marker) {
				return l
			}
		}
	}
	return ""
}

func lastLines(lines []string, n int) string {
	if len(lines) == 0 {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return ": " + strings.Join(lines, " / ")
}

type result struct {
	exit, errmsg string
	hosts        int
}

// parse reads nmap's XML as a token stream, decoding one <host> at a time
// so memory stays flat however large the scan.
func parse(ctx context.Context, r io.Reader, emit sdk.Emitter, log hclog.Logger) (result, error) {
	var res result
	counter := &countingReader{r: bufio.NewReaderSize(r, 64<<10)}
	dec := xml.NewDecoder(counter)
	batch := make([]sdk.Observation, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := emit.Emit(ctx, batch); err != nil {
			return fmt.Errorf("nmap: hand over hosts: %w", err)
		}
		batch = make([]sdk.Observation, 0, batchSize)
		return nil
	}
	sawRoot, finished := false, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, xmlError(dec.InputOffset(), err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "nmaprun":
			sawRoot = true
		case "host":
			var h nmaplib.Host
			if err := dec.DecodeElement(&h, &start); err != nil {
				return res, xmlError(dec.InputOffset(), err)
			}
			res.hosts++
			if obs, ok := observation(&h); ok {
				batch = append(batch, obs)
			}
			if len(batch) == batchSize {
				if err := flush(); err != nil {
					return res, err
				}
			}
		case "taskprogress":
			var p nmaplib.TaskProgress
			if err := dec.DecodeElement(&p, &start); err == nil {
				log.Info("nmap progress", "task", p.Task, "percent", p.Percent, "remaining_s", p.Remaining)
			}
		case "finished":
			finished = true
			for _, a := range start.Attr {
				switch a.Name.Local {
				case "exit":
					res.exit = a.Value
				case "errormsg":
					res.errmsg = a.Value
				}
			}
		}
	}
	if !sawRoot || !finished {
		return res, fmt.Errorf("nmap: output ended at byte %d before nmap reported the scan finished (truncated XML)", counter.n)
	}
	return res, flush()
}

func xmlError(offset int64, err error) error {
	var syn *xml.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && strings.Contains(syn.Msg, "unexpected EOF")) {
		return fmt.Errorf("nmap: output ended at byte %d inside an element (truncated XML): %w", offset, err)
	}
	return fmt.Errorf("nmap: malformed XML output at byte %d: %w", offset, err)
}

// observation converts one nmap host. Hosts nmap did not find up are not
// reported: the scope already says they were looked at.
func observation(h *nmaplib.Host) (sdk.Observation, bool) {
	if h.Status.State != "up" {
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
	if len(h.OS.Matches) > 0 {
		o.OS = h.OS.Matches[0].Name
	}
	for _, p := range h.Ports {
		o.Services = append(o.Services, sdk.Service{
			Protocol: sdk.Protocol(p.Protocol), Port: p.ID, State: p.State.State,
			Name: p.Service.Name, Product: p.Service.Product, Version: p.Service.Version,
		})
	}
	return o, len(o.Addresses) > 0
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
