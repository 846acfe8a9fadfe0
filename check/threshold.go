package check

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Range is a Monitoring Plugins threshold range: "10" (alert above 10 or
// below 0), "10:" (below 10), "~:10" (above 10), "10:20" (outside
// 10..20), "@10:20" (inside 10..20).
type Range struct {
	Start, End float64
	Inside     bool
	text       string
}

// ParseRange reads a range in the Monitoring Plugins syntax.
func ParseRange(s string) (Range, error) {
	r := Range{text: s, End: math.Inf(1)}
	body := s
	if strings.HasPrefix(body, "@") {
		r.Inside, body = true, body[1:]
	}
	num := func(t string) (float64, error) {
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(v) {
			return 0, fmt.Errorf("range %q: %q is not a number", s, t)
		}
		return v, nil
	}
	lo, hi, hasColon := strings.Cut(body, ":")
	var err error
	switch {
	case body == "":
		return r, fmt.Errorf("range %q is empty", s)
	case !hasColon:
		if r.End, err = num(lo); err != nil {
			return r, err
		}
	default:
		if lo == "~" {
			r.Start = math.Inf(-1)
		} else if lo != "" {
			if r.Start, err = num(lo); err != nil {
				return r, err
			}
		}
		if hi != "" {
			if r.End, err = num(hi); err != nil {
				return r, err
			}
		}
	}
	if r.Start > r.End {
		return r, fmt.Errorf("range %q: start is above end", s)
	}
	return r, nil
}

// Alert reports whether v breaks the range.
func (r Range) Alert(v float64) bool {
	in := v >= r.Start && v <= r.End
	return in == r.Inside
}

func (r Range) String() string { return r.text }

// Thresholds map a count ("critical", "warning", "info" deviations, or
// "total" of the warning and critical ones) to its range.
type Thresholds map[string]Range

// thresholdKeys are the counts a threshold may name.
var thresholdKeys = []string{"critical", "warning", "info", "total"}

// ParseThresholds reads "RANGE" (for the total) or
// "critical=RANGE,warning=RANGE,...".
func ParseThresholds(s string) (Thresholds, error) {
	out := Thresholds{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		key, spec, named := strings.Cut(part, "=")
		if !named {
			key, spec = "total", part
		}
		known := false
		for _, k := range thresholdKeys {
			known = known || k == key
		}
		if !known {
			return nil, fmt.Errorf("threshold %q: %q is not one of %s", part, key, strings.Join(thresholdKeys, ", "))
		}
		r, err := ParseRange(spec)
		if err != nil {
			return nil, err
		}
		out[key] = r
	}
	return out, nil
}
