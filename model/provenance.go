package model

import (
	"sort"
	"time"
)

// FactOrigin is where a fact's current value came from: the run whose
// version set it.
type FactOrigin struct {
	Name   string    `json:"name"`
	Value  string    `json:"value"`
	Source string    `json:"source"`
	Job    string    `json:"job,omitempty"`
	RunID  string    `json:"run_id,omitempty"`
	Time   time.Time `json:"time"`
}

// FactOrigins returns each of a's facts with the version of its history
// that last set it to the value it has, by name. Sources that report the
// same value again make no change, so the origin is the first run that
// reported that value. A fact no version accounts for (history lost to
// retention) has an empty source.
func FactOrigins(a *Asset, history []Version) []FactOrigin {
	byVersion := make([]*Version, len(history))
	for i := range history {
		byVersion[i] = &history[i]
	}
	sort.Slice(byVersion, func(i, j int) bool { return byVersion[i].Version < byVersion[j].Version })
	set := map[string]*Version{}
	for _, v := range byVersion {
		for _, c := range v.Changes {
			if c.Field == "fact" {
				set[c.Key] = v
			}
		}
	}
	out := make([]FactOrigin, 0, len(a.Facts))
	for name, value := range a.Facts {
		if value == "" {
			continue // cleared, kept as a key
		}
		o := FactOrigin{Name: name, Value: value}
		if v := set[name]; v != nil {
			o.Source, o.Job, o.RunID, o.Time = v.Source, v.Job, v.RunID, v.Time
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
