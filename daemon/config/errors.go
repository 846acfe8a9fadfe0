package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/sollwert/sollwert/sdk"
)

// Error is a set of configuration problems, each with its position.
type Error struct {
	Diags hcl.Diagnostics
}

func (e *Error) Error() string {
	var lines []string
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		lines = append(lines, formatDiag(d))
	}
	return strings.Join(lines, "\n")
}

func formatDiag(d *hcl.Diagnostic) string {
	pos := ""
	if d.Subject != nil {
		pos = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	if d.Detail == "" {
		return pos + d.Summary
	}
	return pos + d.Summary + ": " + d.Detail
}

func diagErr(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	return &Error{Diags: diags}
}

func errorAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// FieldError turns a source's field errors into positioned errors: each
// names the attribute it is about, or the job block when the attribute is
// absent (a required one, say).
func (j Job) FieldError(verr *sdk.ValidationError) error {
	var diags hcl.Diagnostics
	for _, f := range verr.Fields {
		rng, ok := j.AttrRanges[f.Field]
		if !ok {
			rng = j.Range
		}
		diags = append(diags, errorAt(rng, fmt.Sprintf("Invalid %s attribute %q in job %q", j.Source, f.Field, j.Name), f.Message))
	}
	return diagErr(diags)
}
