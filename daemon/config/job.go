package config

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
	"github.com/sollwert/sollwert/model"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

var jobSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true},
		{Name: "schedule", Required: true},
		{Name: "timeout"},
		{Name: "jitter"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "maintenance"}},
}

// cronParser matches what the scheduler accepts: five fields or a
// descriptor such as "@every 5m".
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (d *decoder) decodeJob(b *hcl.Block) (Job, bool) {
	j := Job{Name: b.Labels[0], Tenant: model.DefaultTenant, Timeout: DefaultTimeout, Range: b.DefRange, AttrRanges: map[string]hcl.Range{}}
	content, rest, diags := b.Body.PartialContent(jobSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return j, false
	}
	before := len(d.diags)
	if a := content.Attributes["source"]; a != nil {
		if s, ok := d.str(a); ok {
			if !nameRE.MatchString(s) {
				d.add(errorAt(a.Expr.Range(), "Invalid source", fmt.Sprintf("%q is not a source name", s)))
			}
			j.Source = s
			j.AttrRanges["source"] = a.Expr.Range()
		}
	}
	if a := content.Attributes["schedule"]; a != nil {
		if s, ok := d.str(a); ok {
			if _, err := cronParser.Parse(s); err != nil {
				d.add(errorAt(a.Expr.Range(), "Invalid schedule", fmt.Sprintf("%q: %v; use five cron fields (\"*/15 * * * *\") or a descriptor (\"@every 5m\", \"@hourly\")", s, err)))
			}
			j.Schedule = s
		}
	}
	if a := content.Attributes["timeout"]; a != nil {
		if dur, ok := d.duration(a); ok {
			if dur == 0 {
				d.add(errorAt(a.Expr.Range(), "Invalid timeout", "must be longer than 0s"))
			}
			j.Timeout = dur
		}
	}
	if a := content.Attributes["jitter"]; a != nil {
		if dur, ok := d.duration(a); ok {
			j.Jitter = dur
		}
	}
	for _, blk := range content.Blocks {
		if w, ok := d.decodeWindow(blk); ok {
			j.Maintenance = append(j.Maintenance, w)
		}
	}
	attrs, diags := rest.JustAttributes()
	// JustAttributes objects to every block, even those PartialContent
	// took; maintenance blocks are the job's own.
	diags = slices.DeleteFunc(diags, func(d *hcl.Diagnostic) bool { return d.Summary == `Unexpected "maintenance" block` })
	if diags.HasErrors() {
		d.add(diags...)
		return j, false
	}
	j.VaultRefs = d.vaultRefs(attrs)
	j.SourceConfig = d.pluginConfig(attrs, j.AttrRanges, b.DefRange, "job")
	return j, len(d.diags) == before
}

// pluginConfig is the JSON object of the attributes a block hands to its
// source or sink, which validates them itself; each attribute's range
// goes into ranges, so that the plugin's field errors name a line.
func (d *decoder) pluginConfig(attrs hcl.Attributes, ranges map[string]hcl.Range, def hcl.Range, what string) json.RawMessage {
	obj := map[string]json.RawMessage{}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		v, ok := d.value(a)
		if !ok {
			continue
		}
		raw, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
		if err != nil {
			d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", name), err.Error()))
			continue
		}
		obj[name] = raw
		ranges[name] = a.Expr.Range()
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		d.add(errorAt(def, "Invalid "+what, err.Error()))
	}
	return raw
}
