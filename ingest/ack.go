package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/store"
)

// Errors of Acknowledge.
var (
	ErrResolved = errors.New("the deviation is resolved")
	ErrNotAcked = errors.New("the deviation is not acknowledged")
	ErrAckEnded = errors.New("the acknowledgement would already have ended")
)

// Acknowledge records that someone accepted a deviation (ack != nil) or
// takes that back (ack == nil). The event goes to the sinks in the same
// transaction, like every other deviation change.
func (a *Applier) Acknowledge(ctx context.Context, tenant, id string, ack *model.Ack) (*model.Deviation, error) {
	now := a.now()
	var out *model.Deviation
	var sum Summary
	err := a.Store.Update(ctx, func(t *store.Txn) error {
		sum = Summary{}
		prev, err := t.Deviation(tenant, id)
		if err != nil {
			return err
		}
		next := *prev
		switch {
		case prev.State == model.StateResolved:
			return ErrResolved
		case ack != nil:
			a := *ack
			a.At = now
			if a.Until != nil && !a.Until.After(now) {
				return fmt.Errorf("%w (%s)", ErrAckEnded, a.Until.Format(time.RFC3339))
			}
			next.State, next.Ack = model.StateAcknowledged, &a
		case prev.State != model.StateAcknowledged:
			return ErrNotAcked
		default:
			next.State, next.Ack = model.StateOpen, nil
		}
		// The asset's deviations as they were, for the event's (host, rule)
		// state; read before the write below changes this one.
		siblings, err := t.DeviationsOfAsset(tenant, next.AssetID)
		if err != nil {
			return err
		}
		if err := t.PutDeviation(&next); err != nil {
			return err
		}
		out = &next
		return a.queueEvents(t, siblings, []model.Deviation{next}, now, &sum)
	})
	if err != nil {
		return nil, err
	}
	a.notify(sum)
	return out, nil
}
