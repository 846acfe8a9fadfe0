package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// host is one entry of an inventory, before it becomes an observation.
type host struct {
	Name      string            `json:"name"`
	Addresses []string          `json:"addresses"`
	Labels    map[string]string `json:"labels"`
	TCP       portList          `json:"tcp"`
	UDP       portList          `json:"udp"`
}

// portList accepts "22,443" or ["22", "443"] in JSON.
type portList []string

func (p *portList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = portList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New(`ports must be a string such as "22,443" or a list of strings`)
	}
	*p = list
	return nil
}

func (h *host) observation() (sdk.Observation, error) {
	if strings.TrimSpace(h.Name) == "" {
		return sdk.Observation{}, errors.New("no name")
	}
	o := sdk.Observation{Hostnames: []string{strings.TrimSpace(h.Name)}, Labels: h.Labels}
	if len(h.Addresses) == 0 {
		return o, fmt.Errorf("host %q has no address", h.Name)
	}
	for _, a := range h.Addresses {
		addr, err := parseAddress(a)
		if err != nil {
			return o, err
		}
		o.Addresses = append(o.Addresses, addr)
	}
	for _, p := range []struct {
		fact  string
		specs portList
	}{{"expected_tcp", h.TCP}, {"expected_udp", h.UDP}} {
		if len(p.specs) == 0 || (len(p.specs) == 1 && strings.TrimSpace(p.specs[0]) == "") {
			continue
		}
		ranges, err := sdk.ParsePortRanges(p.specs...)
		if err != nil {
			return o, fmt.Errorf("%s: %w", strings.TrimPrefix(p.fact, "expected_"), err)
		}
		if o.Facts == nil {
			o.Facts = map[string]string{}
		}
		o.Facts[p.fact] = ranges.String()
	}
	return o, nil
}

func parseAddress(s string) (sdk.Address, error) {
	s = strings.TrimSpace(s)
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		if ip.Is4() {
			return sdk.Address{Addr: ip.String(), Type: "ipv4"}, nil
		}
		return sdk.Address{Addr: ip.String(), Type: "ipv6"}, nil
	}
	if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
		return sdk.Address{Addr: mac.String(), Type: "mac"}, nil
	}
	return sdk.Address{}, fmt.Errorf("address %q is not an IP or MAC address", s)
}

// readCSV reads an inventory with a header row naming its columns: name
// and addresses are required; labels, tcp and udp are optional.
func readCSV(r io.Reader, name string) ([]sdk.Observation, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "name", "addresses", "labels", "tcp", "udp":
			if _, dup := col[h]; dup {
				return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
			}
			col[h] = i
		default:
			return nil, fmt.Errorf("%s:1: unknown column %q (known: name, addresses, labels, tcp, udp)", name, h)
		}
	}
	for _, need := range []string{"name", "addresses"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s:1: the header has no %q column", name, need)
		}
	}
	var out []sdk.Observation
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s:%d: %d fields, the header has %d", name, line, len(rec), len(header))
		}
		field := func(c string) string {
			if i, ok := col[c]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		h := host{Name: field("name"), Addresses: strings.FieldsFunc(field("addresses"), func(r rune) bool { return r == ';' || r == ' ' })}
		if s := field("tcp"); s != "" {
			h.TCP = portList{s}
		}
		if s := field("udp"); s != "" {
			h.UDP = portList{s}
		}
		if h.Labels, err = parseLabels(field("labels")); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		o, err := h.observation()
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, o)
	}
}

func parseLabels(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q is not key=value", kv)
		}
		labels[k] = strings.TrimSpace(v)
	}
	return labels, nil
}

// readJSON reads an inventory that is an array of host objects.
func readJSON(r io.Reader, name string) ([]sdk.Observation, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var hosts []host
	if err := dec.Decode(&hosts); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]sdk.Observation, 0, len(hosts))
	for i := range hosts {
		o, err := hosts[i].observation()
		if err != nil {
			return nil, fmt.Errorf("%s: host %d: %w", name, i, err)
		}
		out = append(out, o)
	}
	return out, nil
}
