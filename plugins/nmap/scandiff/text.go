package scandiff

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// formatName is ndiff's Host.format_name.
func formatName(h *host) string {
	as := make([]string, len(h.addrs)) // sorted already
	for i, a := range h.addrs {
		as[i] = a.s
	}
	a, n := strings.Join(as, ", "), strings.Join(h.names(), ", ")
	switch {
	case n != "" && a != "":
		return n + " (" + a + ")"
	case n != "":
		return n
	case a != "":
		return a
	}
	return "<no name>"
}

// extraString is ndiff's: "997 closed ports, 3 filtered ports", largest
// count first.
func extraString(e []extraPorts) string {
	e = slices.Clone(e)
	slices.SortStableFunc(e, func(x, y extraPorts) int {
		if x.count != y.count {
			return y.count - x.count
		}
		return strings.Compare(y.state, x.state)
	})
	parts := make([]string, len(e))
	for i, x := range e {
		parts[i] = fmt.Sprintf("%d %s ports", x.count, x.state)
	}
	return strings.Join(parts, ", ")
}

// banner is ndiff's format_banner.
func banner(s ScanInfo) string {
	scanner := "Nmap"
	if s.Scanner != "" && s.Scanner != "nmap" {
		scanner = s.Scanner
	}
	parts := []string{scanner}
	if s.Version != "" {
		parts = append(parts, s.Version)
	}
	parts = append(parts, "scan")
	if s.Start != 0 {
		parts = append(parts, "initiated "+time.Unix(s.Start, 0).Format("Mon Jan 02 15:04:05 2006"))
	}
	if s.Args != "" {
		parts = append(parts, "as: "+s.Args)
	}
	return strings.Join(parts, " ")
}

func (s *Service) nameString() string {
	return strings.Join(nonEmpty(s.Tunnel, s.Name), "/")
}

func (s *Service) versionString() string {
	extra := ""
	if s.ExtraInfo != "" {
		extra = "(" + s.ExtraInfo + ")"
	}
	return strings.Join(nonEmpty(s.Product, s.Version, extra), " ")
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// table is ndiff's Table for the port list: left-justified columns and
// raw lines.
type table struct {
	rows   [][]string // nil for a raw line
	raw    []string
	widths []int
}

func (t *table) add(cols ...string) {
	for len(cols) > 0 && cols[len(cols)-1] == "" {
		cols = cols[:len(cols)-1]
	}
	for i, c := range cols {
		if i == len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		t.widths[i] = max(t.widths[i], len(c))
	}
	t.rows, t.raw = append(t.rows, cols), append(t.raw, "")
}

func (t *table) addRaw(s string) { t.rows, t.raw = append(t.rows, nil), append(t.raw, s) }

func (t *table) write(w io.Writer) {
	for i, r := range t.rows {
		if r == nil {
			fmt.Fprintln(w, t.raw[i])
			continue
		}
		var b strings.Builder
		for k, c := range r {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", t.widths[k]-len(c)))
			if k > 0 && k < len(r) {
				b.WriteByte(' ')
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func scriptLines(id, output string) []string {
	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	lines[0] = id + ": " + lines[0]
	for i := range lines {
		if i == len(lines)-1 {
			lines[i] = "|_ " + lines[i]
		} else {
			lines[i] = "|  " + lines[i]
		}
	}
	return lines
}

func addScriptDiffs(t *table, ds []ScriptDiff) {
	for _, d := range ds {
		var a, b []string
		if d.Old != nil {
			a = scriptLines(d.ID, *d.Old)
		}
		if d.New != nil {
			b = scriptLines(d.ID, *d.New)
		}
		for _, op := range opcodes(a, b) {
			switch op.tag {
			case "equal":
				for _, l := range a[op.i1:op.i2] {
					t.addRaw(" " + l)
				}
			default:
				for _, l := range a[op.i1:op.i2] {
					t.addRaw("-" + l)
				}
				for _, l := range b[op.j1:op.j2] {
					t.addRaw("+" + l)
				}
			}
		}
	}
}

// WriteText writes the diff as ndiff's text output does.
func (d *Diff) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	if ba, bb := banner(d.Old), banner(d.New); ba != bb {
		fmt.Fprintf(ew, "-%s\n+%s\n", ba, bb)
	}
	for i := range d.Hosts {
		fmt.Fprintln(ew)
		d.Hosts[i].writeText(ew)
	}
	return ew.err
}

func (hd *HostDiff) writeText(w io.Writer) {
	a, b := hd.a, hd.b
	idChanged := len(hd.AddressesAdded)+len(hd.AddressesRemoved)+len(hd.HostnamesAdded)+len(hd.HostnamesRemoved) > 0 || hd.Change != Changed
	if idChanged {
		if a.state != "" {
			fmt.Fprintf(w, "-%s:\n", formatName(a))
		}
		if b.state != "" {
			fmt.Fprintf(w, "+%s:\n", formatName(b))
		}
	} else {
		fmt.Fprintf(w, " %s:\n", formatName(a))
	}
	if a.state != b.state {
		if a.state != "" {
			fmt.Fprintf(w, "-Host is %s.\n", a.state)
		}
		if b.state != "" {
			fmt.Fprintf(w, "+Host is %s.\n", b.state)
		}
	}
	if hd.ExtraPorts {
		if len(a.extra) > 0 {
			fmt.Fprintf(w, "-Not shown: %s\n", hd.OldExtraPorts)
		}
		if len(b.extra) > 0 {
			fmt.Fprintf(w, "+Not shown: %s\n", hd.NewExtraPorts)
		}
	}
	t := &table{}
	mark := " "
	if a.state == "" {
		mark = "+"
	} else if b.state == "" {
		mark = "-"
	}
	t.add(mark, "PORT", "STATE", "SERVICE", "VERSION")
	for _, p := range hd.Ports {
		spec := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		sa, sb := p.OldService, p.NewService
		if sa == nil {
			sa = &Service{}
		}
		if sb == nil {
			sb = &Service{}
		}
		ca := []string{spec, stateString(p.OldState), sa.nameString(), sa.versionString()}
		cb := []string{spec, stateString(p.NewState), sb.nameString(), sb.versionString()}
		if slices.Equal(ca, cb) {
			if len(p.Scripts) > 0 {
				t.add(append([]string{" "}, ca...)...)
			}
		} else {
			if p.showOld {
				t.add(append([]string{"-"}, ca...)...)
			}
			if p.showNew {
				t.add(append([]string{"+"}, cb...)...)
			}
		}
		addScriptDiffs(t, p.Scripts)
	}
	if len(t.rows) > 1 {
		t.write(w)
	}
	if hd.OSChanged {
		switch {
		case len(a.os()) > 0 && len(b.os()) > 0:
			fmt.Fprintln(w, " OS details:")
		case len(a.os()) > 0:
			fmt.Fprintln(w, "-OS details:")
		case len(b.os()) > 0:
			fmt.Fprintln(w, "+OS details:")
		}
		for _, op := range opcodes(a.os(), b.os()) {
			if op.tag == "equal" {
				for _, s := range a.os()[op.i1:op.i2] {
					fmt.Fprintf(w, "   %s\n", s)
				}
				continue
			}
			for _, s := range a.os()[op.i1:op.i2] {
				fmt.Fprintf(w, "-  %s\n", s)
			}
			for _, s := range b.os()[op.j1:op.j2] {
				fmt.Fprintf(w, "+  %s\n", s)
			}
		}
	}
	if len(hd.Scripts) > 0 {
		st := &table{}
		addScriptDiffs(st, hd.Scripts)
		fmt.Fprintln(w)
		switch {
		case len(b.scripts()) == 0:
			fmt.Fprintln(w, "-Host script results:")
		case len(a.scripts()) == 0:
			fmt.Fprintln(w, "+Host script results:")
		default:
			fmt.Fprintln(w, " Host script results:")
		}
		st.write(w)
	}
}

func stateString(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// WriteJSON writes the diff as one JSON document.
func (d *Diff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if d.Hosts == nil {
		d.Hosts = []HostDiff{}
	}
	return enc.Encode(d)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
