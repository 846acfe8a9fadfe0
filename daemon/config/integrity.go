package config

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultCheckpointInterval is how often chains are checkpointed when the
// integrity block does not say.
const DefaultCheckpointInterval = time.Hour

// Integrity is the integrity block: signed checkpoints of the chains of
// history and audit records. Without it the chains are still kept (and
// verify walks them); nothing signs them.
type Integrity struct {
	// SigningKeyFile holds the ed25519 key (PKCS #8 PEM) checkpoints are
	// signed with; "" means no block.
	SigningKeyFile string
	// CheckpointInterval is how often the heads that moved are signed.
	CheckpointInterval time.Duration
	// ExportFile receives every checkpoint, one JSON line each, on
	// storage that only appends.
	ExportFile string
	Range      hcl.Range
}

func (d *decoder) decodeIntegrity(b *hcl.Block, in *Integrity) {
	in.Range = b.DefRange
	in.CheckpointInterval = DefaultCheckpointInterval
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "signing_key_file", Required: true}, {Name: "checkpoint_interval"}, {Name: "export_file"}}})
	if diags.HasErrors() {
		d.add(diags...)
		return
	}
	if a := content.Attributes["signing_key_file"]; a != nil {
		if s, ok := d.str(a); ok {
			switch st, err := os.Stat(s); {
			case err != nil:
				d.add(errorAt(a.Expr.Range(), "Invalid signing_key_file", fmt.Sprintf("%v (make a key with: sollwert keygen %s)", err, s)))
			case st.Mode().Perm()&0o077 != 0:
				d.add(errorAt(a.Expr.Range(), "Invalid signing_key_file", fmt.Sprintf("%s has mode %04o: others may read the key; chmod 600 it", s, st.Mode().Perm())))
			}
			in.SigningKeyFile = s
		}
	}
	if a := content.Attributes["checkpoint_interval"]; a != nil {
		if dur, ok := d.duration(a); ok {
			if dur < time.Second {
				d.add(errorAt(a.Expr.Range(), "Invalid checkpoint_interval", "must be at least 1s"))
			}
			in.CheckpointInterval = dur
		}
	}
	if a := content.Attributes["export_file"]; a != nil {
		if s, ok := d.str(a); ok {
			in.ExportFile = s
		}
	}
}
