package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"
)

// progressBar draws one line on a terminal: the job, nmap's task and
// percentage, the hosts reported so far, the time taken and nmap's ETA.
// It hears nmap's progress through the log (the "nmap progress" lines the
// source writes) and the hosts through the executor.
type progressBar struct {
	w     io.Writer
	job   string
	start time.Time
	now   func() time.Time

	mu      sync.Mutex
	hosts   int
	task    string
	percent float64
	eta     time.Duration
	drawn   time.Time
}

// isTerminal reports whether w is a terminal, where a bar may redraw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func newProgressBar(w io.Writer, job string) *progressBar {
	return &progressBar{w: w, job: job, start: time.Now(), now: time.Now}
}

// Hosts implements daemon.Executor's Progress.
func (p *progressBar) Hosts(n int) {
	p.mu.Lock()
	p.hosts = n
	p.mu.Unlock()
	p.draw(false)
}

// Accept implements hclog.SinkAdapter: it takes nmap's progress lines.
func (p *progressBar) Accept(_ string, _ hclog.Level, msg string, args ...any) {
	if msg != "nmap progress" {
		return
	}
	p.mu.Lock()
	for i := 0; i+1 < len(args); i += 2 {
		switch k, _ := args[i].(string); k {
		case "task":
			p.task, _ = args[i+1].(string)
		case "percent":
			switch v := args[i+1].(type) {
			case float64:
				p.percent = v
			case float32:
				p.percent = float64(v)
			}
		case "remaining":
			p.eta, _ = args[i+1].(time.Duration)
		}
	}
	p.mu.Unlock()
	p.draw(false)
}

// line renders the bar, 20 cells wide.
func (p *progressBar) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	cells := int(p.percent / 5)
	bar := strings.Repeat("=", min(cells, 20)) + strings.Repeat(" ", 20-min(cells, 20))
	s := fmt.Sprintf("%s [%s] %5.1f%% %d hosts, %s", p.job, bar, p.percent, p.hosts, p.now().Sub(p.start).Round(time.Second))
	if p.eta > 0 {
		s += fmt.Sprintf(", ETA %s", p.eta.Round(time.Second))
	}
	if p.task != "" {
		s += " (" + p.task + ")"
	}
	return s
}

// draw redraws the line, at most ten times a second unless final.
func (p *progressBar) draw(final bool) {
	p.mu.Lock()
	now := p.now()
	if !final && now.Sub(p.drawn) < 100*time.Millisecond {
		p.mu.Unlock()
		return
	}
	p.drawn = now
	p.mu.Unlock()
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s", p.line(), end)
}

// Done finishes the line so that what follows starts on its own.
func (p *progressBar) Done() { p.draw(true) }

// sinkAt hands a sink adapter the lines at or above its level.
type sinkAt struct {
	hclog.SinkAdapter
	level hclog.Level
}

func (s sinkAt) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level >= s.level {
		s.SinkAdapter.Accept(name, level, msg, args...)
	}
}
