package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/sollwert/sollwert/sdk"
)

const version = "1.0.0"

// batchSize is how many hosts go to the host at once.
const batchSize = 500

type source struct{}

type config struct {
	File   string `json:"file"`
	Format string `json:"format"`
}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    "hostsfile",
		Version: version,
		Fields: []sdk.Field{
			{Name: "file", Type: "string", Required: true, Description: "inventory file, CSV or JSON"},
			{Name: "format", Type: "string", Description: `"csv" or "json"; by default from the file's extension`},
		},
		Observes: []string{"hostnames", "addresses", "labels", "expected_ports"},
	}, nil
}

// parseConfig reads and checks a configuration; every problem is a field
// error naming its attribute.
func parseConfig(raw json.RawMessage) (config, error) {
	var c config
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	verr := &sdk.ValidationError{}
	if c.File == "" {
		verr.Add("file", "is required")
	}
	if c.Format == "" {
		c.Format = formatOf(c.File)
	}
	switch c.Format {
	case "csv", "json":
	case "":
		if c.File == "" {
			break // already reported
		}
		verr.Add("format", "cannot tell the format of %q from its extension; set format to csv or json", c.File)
	default:
		verr.Add("format", "%q is neither csv nor json", c.Format)
	}
	return c, verr.Err()
}

func formatOf(path string) string {
	switch filepath.Ext(path) {
	case ".csv":
		return "csv"
	case ".json":
		return "json"
	}
	return ""
}

func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	c, err := parseConfig(raw)
	if err != nil {
		return err
	}
	f, err := os.Open(c.File)
	if err != nil {
		verr := &sdk.ValidationError{}
		verr.Add("file", "%v", err)
		return verr
	}
	return f.Close()
}

// Discover reads the whole file before emitting anything: a file with a
// bad row fails the run, and the host changes nothing.
func (*source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	c, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	f, err := os.Open(c.File)
	if err != nil {
		return sdk.Result{}, err
	}
	defer f.Close()
	var hosts []sdk.Observation
	if c.Format == "json" {
		hosts, err = readJSON(f, filepath.Base(c.File))
	} else {
		hosts, err = readCSV(f, filepath.Base(c.File))
	}
	if err != nil {
		return sdk.Result{}, err
	}
	for start := 0; start < len(hosts); start += batchSize {
		if err := emit.Emit(ctx, hosts[start:min(start+batchSize, len(hosts))]); err != nil {
			return sdk.Result{}, err
		}
	}
	sdk.Logger(ctx).Info("inventory read", "file", c.File, "hosts", len(hosts))
	// An inventory lists some hosts; a host it does not list is not gone,
	// so the run claims no address range.
	return sdk.Result{}, nil
}
