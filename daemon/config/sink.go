package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// Sink is one sink block: where deviation events go, and which.
type Sink struct {
	Name, Type string
	// The filter: an empty list takes everything.
	Tenants, Severities, Rules, Kinds, Events []string
	// Config holds every other attribute, for the sink type.
	Config json.RawMessage
	// VaultRefs are the NAME_vault attributes among Config's.
	VaultRefs  []VaultRef
	Range      hcl.Range
	AttrRanges map[string]hcl.Range
}

// Fingerprint changes whenever anything about the sink changes.
func (s Sink) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%q\x00%q\x00%q\x00%s", s.Type, s.Tenants, s.Severities, s.Rules, s.Kinds, s.Events, s.Config)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// FieldError turns a sink type's field errors into positioned errors.
func (s Sink) FieldError(verr *sdk.ValidationError) error {
	var diags hcl.Diagnostics
	for _, f := range verr.Fields {
		rng, ok := s.AttrRanges[f.Field]
		if !ok {
			rng = s.Range
		}
		diags = append(diags, errorAt(rng, fmt.Sprintf("Invalid %s attribute %q in sink %q", s.Type, f.Field, s.Name), f.Message))
	}
	return diagErr(diags)
}

var sinkSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true},
		{Name: "tenants"}, {Name: "severities"}, {Name: "rules"}, {Name: "kinds"}, {Name: "events"},
	},
}

func (d *decoder) decodeSink(b *hcl.Block) (Sink, bool) {
	s := Sink{Name: b.Labels[0], Range: b.DefRange, AttrRanges: map[string]hcl.Range{}}
	content, rest, diags := b.Body.PartialContent(sinkSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return s, false
	}
	before := len(d.diags)
	if a := content.Attributes["type"]; a != nil {
		if t, ok := d.str(a); ok {
			if !nameRE.MatchString(t) {
				d.add(errorAt(a.Expr.Range(), "Invalid type", fmt.Sprintf("%q is not a sink type", t)))
			}
			s.Type = t
			s.AttrRanges["type"] = a.Expr.Range()
		}
	}
	known := map[string][]string{
		"severities": {string(model.SeverityInfo), string(model.SeverityWarning), string(model.SeverityCritical)},
		"kinds": {string(model.KindUnexpectedPort), string(model.KindMissingPort), string(model.KindUnknownHost), string(model.KindStaleScan),
			string(model.KindFactMismatch), string(model.KindInterfaceDown)},
		"events": {sdk.EventOpened, sdk.EventSeverityChanged, sdk.EventAcknowledged, sdk.EventUnacknowledged, sdk.EventResolved, sdk.EventFlapping},
	}
	for attr, into := range map[string]*[]string{"tenants": &s.Tenants, "severities": &s.Severities, "rules": &s.Rules, "kinds": &s.Kinds, "events": &s.Events} {
		a := content.Attributes[attr]
		if a == nil {
			continue
		}
		list, ranges, ok := d.strList(a)
		if !ok {
			continue
		}
		for i, v := range list {
			if allowed, check := known[attr]; check && !slices.Contains(allowed, v) {
				d.add(errorAt(ranges[i], "Invalid "+attr, fmt.Sprintf("%q is not one of %v", v, allowed)))
				continue
			}
			*into = append(*into, v)
		}
	}
	attrs, diags := rest.JustAttributes()
	if diags.HasErrors() {
		d.add(diags...)
		return s, false
	}
	s.VaultRefs = d.vaultRefs(attrs)
	s.Config = d.pluginConfig(attrs, s.AttrRanges, b.DefRange, "sink")
	return s, len(d.diags) == before
}
