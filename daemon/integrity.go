package daemon

import (
	"crypto/ed25519"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/integrity"
	"github.com/sollwert/sollwert/store"
)

// checkpointing reads the integrity block: the checkpointer to run (nil
// without a block) and what verify holds the chains against. The block is
// read at start; a reload does not change the key.
func checkpointing(cfg config.Integrity, st *store.Store, log hclog.Logger) (*integrity.Checkpointer, integrity.Options, error) {
	if cfg.SigningKeyFile == "" {
		return nil, integrity.Options{}, nil
	}
	key, err := integrity.LoadSigningKey(cfg.SigningKeyFile)
	if err != nil {
		return nil, integrity.Options{}, err
	}
	var ex []integrity.Exporter
	if cfg.ExportFile != "" {
		ex = append(ex, integrity.FileExporter{Path: cfg.ExportFile})
	}
	c := &integrity.Checkpointer{Store: st, Key: key, Exporters: ex, Interval: cfg.CheckpointInterval, Log: log}
	return c, integrity.Options{PublicKey: key.Public().(ed25519.PublicKey), ExportFile: cfg.ExportFile}, nil
}
