package nmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Import is the nmap source reading a scan made elsewhere (`sollwert
// import FILE.xml --job NAME`) instead of running nmap: the same reader,
// the same checks of a finished scan, and a scope only as wide as the
// file proves. The job's targets are the scope's addresses, so the file
// must cover exactly those; its <scaninfo> lists the ports it scanned.
type Import struct {
	r   io.Reader
	log hclog.Logger
}

// NewImport reads the XML from r, once.
func NewImport(r io.Reader, log hclog.Logger) *Import {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Import{r: r, log: log}
}

// Describe implements sdk.Source.
func (s *Import) Describe(ctx context.Context) (sdk.Description, error) {
	return New(s.log).Describe(ctx)
}

// Validate implements sdk.Source.
func (s *Import) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// Discover implements sdk.Source.
func (s *Import) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	out, err := parseOutput(ctx, s.r, emit, s.log.With("job", req.Job, "run_id", req.RunID))
	if err != nil {
		var oerr *outputError
		if errors.As(err, &oerr) {
			return sdk.Result{}, fmt.Errorf("nmap import: %w", err)
		}
		return sdk.Result{}, err
	}
	if err := out.finishedWhole(0); err != nil {
		return sdk.Result{}, fmt.Errorf("import: %w", err)
	}
	if want := addressCount(cfg.prefixes); out.total != want {
		return sdk.Result{}, fmt.Errorf("import: the file scanned %d addresses, but job %q's targets hold %d: import a scan of exactly the job's targets, so that hosts it did not find can count as down", out.total, req.Job, want)
	}
	if len(out.scanned) == 0 {
		return sdk.Result{}, errors.New("import: the file has no <scaninfo> with the ports it scanned (was it written with -oX by nmap itself?)")
	}
	if len(out.pending) > 0 {
		if err := emit.Emit(ctx, out.pending); err != nil {
			return sdk.Result{}, fmt.Errorf("import: hand over hosts: %w", err)
		}
	}
	scope := cfg.Scope()
	scope.Ports = out.scanned
	return sdk.Result{Scope: scope}, nil
}
