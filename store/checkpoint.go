package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sollwert/sollwert/model"
)

// Checkpoints live beside the chains they vouch for:
//
//	k/TENANT/SEQ(8)   checkpoint as JSON
//
// They are not chained themselves: their signature carries them.
const prefixCheckpoint = "k/"

// errStopIteration ends a forEach early without an error.
var errStopIteration = errors.New("stop")

func checkpointPrefix(tenant string) []byte { return []byte(prefixCheckpoint + tenant + "/") }

// PutCheckpoint stores a checkpoint.
func (t *Txn) PutCheckpoint(c *model.Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := t.txn.Set(binary.BigEndian.AppendUint64(checkpointPrefix(c.Tenant), c.Seq), b); err != nil {
		return fmt.Errorf("checkpoint %s/%d: %w", c.Tenant, c.Seq, err)
	}
	return nil
}

// Checkpoints returns the stored checkpoints of tenant, oldest first.
func (t *Txn) Checkpoints(tenant string) ([]model.Checkpoint, error) {
	var out []model.Checkpoint
	err := t.forEach(checkpointPrefix(tenant), nil, nil, false, true, func(k, v []byte) error {
		var c model.Checkpoint
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("checkpoint %q: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// LastCheckpoint returns tenant's newest stored checkpoint; ok false when
// it has none.
func (t *Txn) LastCheckpoint(tenant string) (c model.Checkpoint, ok bool, err error) {
	err = t.forEach(checkpointPrefix(tenant), nil, nil, true, true, func(k, v []byte) error {
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("checkpoint %q: %w", k, err)
		}
		ok = true
		return errStopIteration
	})
	if errors.Is(err, errStopIteration) {
		err = nil
	}
	return c, ok, err
}
