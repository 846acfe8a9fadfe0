package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sollwert/sollwert/model"
)

// PruneHistory drops the older versions of every asset of tenant made
// before cutoff, keeping the newest of them: the state at the cutoff stays
// known (time travel to any later time still answers), and the versions
// since are untouched. The current version, carried in the asset record,
// is never dropped. It works asset by asset in transactions of their own
// and returns how many versions it dropped.
func (s *Store) PruneHistory(ctx context.Context, tenant string, cutoff time.Time) (int, error) {
	var ids []string
	if err := s.View(ctx, func(t *Txn) error {
		return t.forEach(assetPrefix(tenant), nil, nil, false, false, func(k, _ []byte) error {
			ids = append(ids, string(k[len(assetPrefix(tenant)):]))
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	// The chain learns of the cutoff before any version goes, so that a
	// version missing without a prune entry after it is a deletion.
	if err := s.Update(ctx, func(t *Txn) error {
		t.links = append(t.links, link{tenant: tenant, kind: linkPrune, time: time.Now(),
			ref: binary.BigEndian.AppendUint64(nil, uint64(cutoff.UnixNano()))})
		return nil
	}); err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	dropped := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
		err := s.Update(ctx, func(t *Txn) error {
			var old [][]byte // keys of versions before the cutoff, oldest first
			err := t.forEach(historyPrefix(tenant, id), nil, nil, false, true, func(k, v []byte) error {
				var ver model.Version
				if err := decode(v, &ver); err != nil {
					return err
				}
				if ver.Time.Before(cutoff) {
					old = append(old, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			// The newest version before the cutoff is the state then.
			for _, k := range old[:max(len(old)-1, 0)] {
				if err := t.txn.Delete(k); err != nil {
					return err
				}
				dropped++
			}
			return nil
		})
		if err != nil {
			return dropped, fmt.Errorf("retention: asset %s: %w", id, err)
		}
	}
	return dropped, nil
}
