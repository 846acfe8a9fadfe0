package nmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

const (
	// stderrKeep bounds how much of nmap's stderr is kept: the end is
	// what explains a failure.
	stderrKeep = 64 << 10
	// waitDelay bounds how long Wait may take once the context is done,
	// should anything still hold nmap's pipes open.
	waitDelay = 2 * time.Second
	// exitGrace is how long nmap may take to exit after its output ended
	// early, before it is stopped.
	exitGrace = 500 * time.Millisecond
	// statsEvery is how often nmap reports progress.
	statsEvery = "2s"
)

// targetFailures are stderr texts with which nmap drops a target and yet
// exits 0: the scope would then claim hosts that were never scanned.
var targetFailures = []string{
	"Failed to resolve",
	"QUITTING",
	"Unable to split netmask",
	"Illegal netmask",
	"No targets were specified",
	"you have to use the -6 option",
}

// runSpec is one nmap process.
type runSpec struct {
	binary string
	args   []string // without the output options, which runNmap adds
	// expectHosts is how many addresses the targets hold; nmap must
	// report exactly that many scanned. 0 skips the check.
	expectHosts uint64
}

// runNmap runs nmap, streams its XML into emit and decides whether the run
// finished. It returns nmap's stderr lines as warnings. Any error means the
// run is incomplete, whatever was emitted before it.
func runNmap(ctx context.Context, spec runSpec, emit sdk.Emitter, log hclog.Logger) ([]string, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	args := append(append([]string(nil), spec.args...), "-oX", "-", "--stats-every", statsEvery)
	cmd := exec.CommandContext(ctx, spec.binary, args...)
	// nmap gets a process group of its own, and cancellation kills the
	// whole group, so no helper it started outlives the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return stopProcess(cmd.Process) }
	cmd.WaitDelay = waitDelay
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("nmap: %w", err)
	}
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nmap: start %s: %w", spec.binary, err)
	}
	// Should something that escaped the process group still hold the
	// pipe, closing it on cancellation unblocks the reader.
	stopClosing := context.AfterFunc(ctx, func() { _ = stdout.Close() })
	out, parseErr := parseOutput(ctx, stdout, emit, log)
	stopClosing()

	var outErr *outputError
	isOutputErr := errors.As(parseErr, &outErr)
	var waitErr error
	stoppedByUs := false
	switch {
	case parseErr == nil:
		waitErr = cmd.Wait()
	case isOutputErr:
		// Output that ends early usually means nmap died, and its exit
		// status says why: give it a moment to exit on its own.
		stoppedByUs, waitErr = waitOrStop(cmd, exitGrace)
	default:
		// The emitter failed: nobody reads nmap's output any more.
		stoppedByUs, waitErr = waitOrStop(cmd, 0)
	}
	lines := stderr.lines()

	switch {
	case ctx.Err() != nil:
		return lines, fmt.Errorf("nmap: scan stopped before it finished: %w", context.Cause(ctx))
	case parseErr != nil && !isOutputErr:
		return lines, parseErr // the emitter's error: nmap was stopped for it
	case waitErr != nil && !stoppedByUs:
		if parseErr != nil {
			return lines, fmt.Errorf("nmap: %s%s (%v)%s: %w", describeExit(waitErr), tail(lines, 5), parseErr, rawSocketHint(lines), waitErr)
		}
		return lines, fmt.Errorf("nmap: %s%s%s: %w", describeExit(waitErr), tail(lines, 5), rawSocketHint(lines), waitErr)
	case parseErr != nil:
		return lines, fmt.Errorf("nmap: %w%s", parseErr, tail(lines, 3))
	}
	if err := out.finishedWhole(spec.expectHosts); err != nil {
		return lines, fmt.Errorf("%w%s", err, tail(lines, 3))
	}
	if bad := findTargetFailure(lines); bad != "" {
		return lines, fmt.Errorf("nmap: a target could not be scanned: %s", bad)
	}
	if len(out.pending) > 0 {
		if err := emit.Emit(ctx, out.pending); err != nil {
			return lines, fmt.Errorf("nmap: hand over hosts: %w", err)
		}
	}
	return lines, nil
}

// finishedWhole says whether the XML describes a scan that ran to its end
// over exactly expect addresses (0: any number), the condition for its
// absences to count.
func (out *scanOutput) finishedWhole(expect uint64) error {
	switch {
	case !out.finished:
		return errors.New("nmap: output has no <runstats><finished>: the scan did not finish")
	case out.exit != "success":
		msg := out.errormsg
		if msg == "" {
			msg = fmt.Sprintf("exit=%q", out.exit)
		}
		return fmt.Errorf("nmap: scan failed: %s", msg)
	case len(out.skipped) > 0:
		return fmt.Errorf("nmap: skipped targets %s", strings.Join(out.skipped, ", "))
	case !out.hostsSeen:
		return errors.New("nmap: output has no <runstats><hosts>: cannot tell how many addresses were scanned")
	case expect > 0 && out.total != expect:
		return fmt.Errorf("nmap: scanned %d addresses, but the targets hold %d", out.total, expect)
	}
	return nil
}

// stopProcess kills nmap and its process group. The leader is signalled
// through os.Process first, which knows whether it has been reaped: only
// while it has not (a zombie still holds its id) is the group id certain
// to be nmap's and not a reused one.
func stopProcess(p *os.Process) error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err // os.ErrProcessDone: reaped, nothing left to stop
	}
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// waitOrStop waits up to grace for nmap to exit, then stops it. It
// reports whether nmap had to be stopped.
func waitOrStop(cmd *exec.Cmd, grace time.Duration) (stopped bool, err error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if grace > 0 {
		select {
		case err := <-done:
			return false, err
		case <-time.After(grace):
		}
	}
	stopped = stopProcess(cmd.Process) == nil
	return stopped, <-done
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

func rawSocketHint(lines []string) string {
	for _, l := range lines {
		if strings.Contains(l, "raw socket") {
			return ` (raw sockets need root or CAP_NET_RAW passed on to nmap, e.g. systemd AmbientCapabilities=CAP_NET_RAW; or use scan_type "connect")`
		}
	}
	return ""
}

func findTargetFailure(lines []string) string {
	for _, l := range lines {
		for _, marker := range targetFailures {
			if strings.Contains(l, marker) {
				return l
			}
		}
	}
	return ""
}

// tail formats the last n lines for an error message.
func tail(lines []string, n int) string {
	if len(lines) == 0 {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return ": " + strings.Join(lines, " / ")
}

// tailBuffer keeps the last max bytes written to it. exec copies stderr
// from a goroutine of its own, hence the lock.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		// Compact rarely rather than on every write.
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// lines returns the kept stderr as trimmed, non-empty lines.
func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf := t.buf
	if len(buf) > t.max {
		buf = buf[len(buf)-t.max:]
		// Drop the partial first line.
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	var out []string
	for _, l := range strings.Split(string(buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// addressCount is how many addresses the prefixes hold; ParseConfig keeps
// each below 2^24, so the sum cannot overflow.
func addressCount(prefixes []netip.Prefix) uint64 {
	var n uint64
	for _, p := range prefixes {
		n += 1 << uint(p.Addr().BitLen()-p.Bits())
	}
	return n
}
