// Package config loads sollwert's one HCL configuration file. Every
// problem it finds is an hcl.Diagnostic with the file, line and column of
// the offending text, and Load reports them all at once in the form
// FILE:LINE:COL: summary: detail. It knows each block's own attributes;
// a job's source-specific attributes are passed on as JSON for the source
// to validate, with their positions kept so source errors point at the
// right line too.
package config
