package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// The active-deviation index: one entry per open or acknowledged
// deviation, ordered as views list them (worst severity first, then
// oldest first), so that a page of 50 out of 10,000 reads 50 records and
// counting reads the index alone. The value is the state: 'o' open, 'a'
// acknowledged.
//
//	s/TENANT/RANK(1)OPENED(8)DEVIATION -> STATE(1)
//
// RANK is 255 minus the severity's rank.
const prefixActiveDev = "s/"

func activeDevPrefix(tenant string) []byte { return []byte(prefixActiveDev + tenant + "/") }

func activeDevKey(d *model.Deviation) []byte {
	k := append(activeDevPrefix(d.Tenant), byte(255-d.Severity.Rank()))
	k = binary.BigEndian.AppendUint64(k, uint64(d.OpenedAt.UnixNano()))
	return append(k, d.ID...)
}

// indexDeviation moves d's entry in the index from how prev stood (nil:
// not stored before) to how d stands.
func (t *Txn) indexDeviation(prev, d *model.Deviation) error {
	if prev != nil && prev.Active() {
		if err := t.txn.Delete(activeDevKey(prev)); err != nil {
			return fmt.Errorf("unindex deviation %s: %w", d.ID, err)
		}
	}
	if d.Active() {
		state := []byte{'o'}
		if d.State == model.StateAcknowledged {
			state[0] = 'a'
		}
		if err := t.txn.Set(activeDevKey(d), state); err != nil {
			return fmt.Errorf("index deviation %s: %w", d.ID, err)
		}
	}
	return nil
}

// ActiveDeviations calls fn for the open and acknowledged deviations of
// tenant from the offset-th on, worst first and then oldest first, until
// fn returns ErrStop or the index ends.
func (t *Txn) ActiveDeviations(tenant string, offset int, fn func(*model.Deviation) error) error {
	prefix := activeDevPrefix(tenant)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.ValidForPrefix(prefix); it.Next() {
		if offset > 0 {
			offset--
			continue
		}
		k := it.Item().Key()
		id := string(k[len(prefix)+9:])
		d, err := t.Deviation(tenant, id)
		if err != nil {
			return fmt.Errorf("active deviation index names %s: %w", id, err)
		}
		if err := fn(d); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// ErrStop ends an iteration early without an error.
var ErrStop = errors.New("stop")

// ActiveCounts are a tenant's active deviations: the open ones by
// severity, and the acknowledged ones by severity.
type ActiveCounts struct {
	Open, Acked map[model.Severity]int
}

// Total is every active deviation of one severity, open or acknowledged.
func (c ActiveCounts) Total(s model.Severity) int { return c.Open[s] + c.Acked[s] }

// AckedTotal is every acknowledged deviation.
func (c ActiveCounts) AckedTotal() int {
	n := 0
	for _, v := range c.Acked {
		n += v
	}
	return n
}

// CountActiveDeviations counts the open and acknowledged deviations of
// tenant by severity, from the index alone.
func (t *Txn) CountActiveDeviations(tenant string) (ActiveCounts, error) {
	prefix := activeDevPrefix(tenant)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	bySev := map[byte]model.Severity{}
	for _, s := range []model.Severity{model.SeverityInfo, model.SeverityWarning, model.SeverityCritical} {
		bySev[byte(255-s.Rank())] = s
	}
	out := ActiveCounts{Open: map[model.Severity]int{}, Acked: map[model.Severity]int{}}
	for it.Rewind(); it.ValidForPrefix(prefix); it.Next() {
		sev := bySev[it.Item().Key()[len(prefix)]]
		acked := false
		if err := it.Item().Value(func(v []byte) error { acked = len(v) == 1 && v[0] == 'a'; return nil }); err != nil {
			return out, err
		}
		if acked {
			out.Acked[sev]++
		} else {
			out.Open[sev]++
		}
	}
	return out, nil
}

// buildDeviationIndex writes the index for every stored deviation, in
// transactions of its own, for stores of schema 2 and older; entries
// already there are written again, so a crash half-way only repeats work.
func buildDeviationIndex(db *badger.DB) error {
	var start []byte
	for {
		var next []byte
		err := db.Update(func(txn *badger.Txn) error {
			t := &Txn{txn: txn}
			prefix := []byte(prefixDeviation)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			n := 0
			for it.Seek(append(prefix, start...)); it.ValidForPrefix(prefix); it.Next() {
				if n == 5000 {
					next = append([]byte(nil), it.Item().Key()[len(prefix):]...)
					return nil
				}
				var d model.Deviation
				if err := it.Item().Value(func(v []byte) error { return decode(v, &d) }); err != nil {
					return err
				}
				if err := t.indexDeviation(nil, &d); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: build the deviation index: %w", err)
		}
		if next == nil {
			return nil
		}
		start = next
	}
}
