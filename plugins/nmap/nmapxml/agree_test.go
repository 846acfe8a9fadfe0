package nmapxml_test

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

// fromLib converts what encoding/xml decodes into the nmap library's
// structs into this package's types, field by field, for comparison. The
// library lacks a few fields (extrareasons' proto and ports); those are
// cleared on the other side.
func fromLib(r *nmaplib.Run) *nmapxml.Scan {
	unix := func(ts nmaplib.Timestamp) int64 {
		if time.Time(ts).IsZero() {
			return 0
		}
		return time.Time(ts).Unix()
	}
	scripts := func(in []nmaplib.Script) []nmapxml.Script {
		var out []nmapxml.Script
		for _, s := range in {
			out = append(out, nmapxml.Script{ID: s.ID, Output: s.Output})
		}
		return out
	}
	cpes := func(in []nmaplib.CPE) []string {
		var out []string
		for _, c := range in {
			out = append(out, string(c))
		}
		return out
	}
	s := &nmapxml.Scan{Run: nmapxml.Run{
		Scanner: r.Scanner, Args: r.Args, Start: unix(r.Start), StartStr: r.StartStr, Version: r.Version,
		XMLOutputVersion: r.XMLOutputVersion, ProfileName: r.ProfileName,
		Verbose: r.Verbose.Level, Debugging: r.Debugging.Level,
		PreScripts: scripts(r.PreScripts), PostScripts: scripts(r.PostScripts),
	}}
	if r.ScanInfo != (nmaplib.ScanInfo{}) {
		s.Run.ScanInfo = []nmapxml.ScanInfo{{Type: r.ScanInfo.Type, Protocol: r.ScanInfo.Protocol, NumServices: r.ScanInfo.NumServices, Services: r.ScanInfo.Services, ScanFlags: r.ScanInfo.ScanFlags}}
	}
	for _, t := range r.Targets {
		s.Run.Targets = append(s.Run.Targets, nmapxml.Target{Specification: t.Specification, Status: t.Status, Reason: t.Reason})
	}
	f := r.Stats.Finished
	s.Run.Finished = &nmapxml.Finished{Time: unix(f.Time), TimeStr: f.TimeStr, Summary: f.Summary, Exit: f.Exit, ErrorMsg: f.ErrorMsg,
		Elapsed: strconv.FormatFloat(float64(f.Elapsed), 'f', 2, 32)}
	s.Run.HostStats = &nmapxml.HostStats{Up: r.Stats.Hosts.Up, Down: r.Stats.Hosts.Down, Total: r.Stats.Hosts.Total}
	for _, h := range r.Hosts {
		o := nmapxml.Host{
			StartTime: unix(h.StartTime), EndTime: unix(h.EndTime), Comment: h.Comment,
			Status:      nmapxml.Status{State: h.Status.State, Reason: h.Status.Reason, ReasonTTL: int(h.Status.ReasonTTL)},
			Uptime:      nmapxml.Uptime{Seconds: int64(h.Uptime.Seconds), LastBoot: h.Uptime.Lastboot},
			Distance:    h.Distance.Value,
			Times:       nmapxml.Times{SRTT: h.Times.SRTT, RTTVar: h.Times.RTT, To: h.Times.To},
			HostScripts: scripts(h.HostScripts),
		}
		for _, a := range h.Addresses {
			o.Addresses = append(o.Addresses, nmapxml.Address{Addr: a.Addr, AddrType: a.AddrType, Vendor: a.Vendor})
		}
		for _, n := range h.Hostnames {
			o.Hostnames = append(o.Hostnames, nmapxml.Hostname{Name: n.Name, Type: n.Type})
		}
		for _, e := range h.ExtraPorts {
			x := nmapxml.ExtraPorts{State: e.State, Count: e.Count}
			for _, r := range e.Reasons {
				x.Reasons = append(x.Reasons, nmapxml.ExtraReasons{Reason: r.Reason, Count: r.Count})
			}
			o.ExtraPorts = append(o.ExtraPorts, x)
		}
		for _, p := range h.Ports {
			v := p.Service
			o.Ports = append(o.Ports, nmapxml.Port{
				Protocol: p.Protocol, ID: p.ID, Owner: p.Owner.Name,
				State: nmapxml.PortState{State: p.State.State, Reason: p.State.Reason, ReasonTTL: int(p.State.ReasonTTL), ReasonIP: p.State.ReasonIP},
				Service: nmapxml.Service{Name: v.Name, Product: v.Product, Version: v.Version, ExtraInfo: v.ExtraInfo, Tunnel: v.Tunnel,
					Method: v.Method, Conf: v.Confidence, OSType: v.OSType, DeviceType: v.DeviceType, Hostname: v.Hostname,
					ServiceFP: v.ServiceFP, CPEs: cpes(v.CPEs)},
				Scripts: scripts(p.Scripts),
			})
		}
		for _, u := range h.OS.PortsUsed {
			o.OS.PortsUsed = append(o.OS.PortsUsed, nmapxml.PortUsed{State: u.State, Proto: u.Proto, ID: uint16(u.ID)})
		}
		for _, m := range h.OS.Matches {
			mm := nmapxml.OSMatch{Name: m.Name, Accuracy: m.Accuracy, Line: m.Line}
			for _, c := range m.Classes {
				mm.Classes = append(mm.Classes, nmapxml.OSClass{Type: c.Type, Vendor: c.Vendor, Family: c.Family, Gen: c.OSGeneration, Accuracy: c.Accuracy, CPEs: cpes(c.CPEs)})
			}
			o.OS.Matches = append(o.OS.Matches, mm)
		}
		for _, fp := range h.OS.Fingerprints {
			o.OS.Fingerprints = append(o.OS.Fingerprints, fp.Fingerprint)
		}
		s.Hosts = append(s.Hosts, o)
	}
	return s
}

// comparable clears what the library does not decode, so both sides
// describe the same fields.
func comparable(s *nmapxml.Scan) *nmapxml.Scan {
	c := *s
	if len(c.Run.ScanInfo) > 1 {
		c.Run.ScanInfo = c.Run.ScanInfo[len(c.Run.ScanInfo)-1:] // the library keeps one
	}
	if c.Run.Finished == nil {
		c.Run.Finished = &nmapxml.Finished{Elapsed: "0.00"}
	} else if f, err := strconv.ParseFloat(c.Run.Finished.Elapsed, 32); err == nil {
		ff := *c.Run.Finished
		ff.Elapsed = strconv.FormatFloat(f, 'f', 2, 32)
		c.Run.Finished = &ff
	}
	if c.Run.HostStats == nil {
		c.Run.HostStats = &nmapxml.HostStats{}
	}
	c.Hosts = nil
	for _, h := range s.Hosts {
		h.ExtraPorts = append([]nmapxml.ExtraPorts(nil), h.ExtraPorts...)
		for i := range h.ExtraPorts {
			rs := append([]nmapxml.ExtraReasons(nil), h.ExtraPorts[i].Reasons...)
			for k := range rs {
				rs[k].Proto, rs[k].Ports = "", ""
			}
			h.ExtraPorts[i].Reasons = rs
		}
		c.Hosts = append(c.Hosts, h)
	}
	return &c
}

// agree checks that this reader and encoding/xml read data alike.
func agree(t *testing.T, name string, data []byte) {
	t.Helper()
	var lib nmaplib.Run
	if err := xml.Unmarshal(data, &lib); err != nil {
		t.Fatalf("%s: encoding/xml: %v", name, err)
	}
	got, err := nmapxml.ReadAll(bytes.NewReader(data), nmapxml.Options{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	want, have := fromLib(&lib), comparable(got)
	if !reflect.DeepEqual(want, have) {
		t.Fatalf("%s: encoding/xml and nmapxml differ: %s", name, firstDiff(mustJSON(t, want), mustJSON(t, have)))
	}
}

// firstDiff shows where two JSON texts part.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			lo := max(0, i-3)
			return "line " + strconv.Itoa(i+1) + ":\n  want " + strings.Join(al[lo:i+1], "\n       ") + "\n  have " + strings.Join(bl[lo:i+1], "\n       ")
		}
	}
	return "lengths differ (or only nil vs empty)"
}

func TestAgreesWithEncodingXMLOnRealNmapFiles(t *testing.T) {
	for _, f := range realFiles(t) {
		t.Run(f, func(t *testing.T) { agree(t, f, readFile(t, f)) })
	}
}

func TestAgreesWithEncodingXMLOnHandWrittenFiles(t *testing.T) {
	for _, f := range []string{"testdata/ipv6-mac-hostnames.xml", "testdata/scripts-os.xml", "testdata/quoting.xml"} {
		t.Run(f, func(t *testing.T) { agree(t, f, readFile(t, f)) })
	}
}
