package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// The outbox: every deviation event for every sink it is routed to, written
// in the same transaction as the deviation change that caused it, so a
// crash can lose neither. A delivered event is deleted from its sink's
// queue; one the sink refused for good moves to the sink's dead letters,
// which stay until someone looks.
//
//	q/SINK/TIME(8)ID    queued event
//	x/SINK/TIME(8)ID    dead letter: event and the sink's reason

// Queued is one event waiting for one sink.
type Queued struct {
	Key   []byte    `json:"-"`
	Event sdk.Event `json:"event"`
	// Attempts and LastError describe earlier tries.
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

func queueKey(prefix, sink string, ev *sdk.Event) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefix+sink+"/"), uint64(ev.Time.UnixNano()))
	return append(k, ev.ID...)
}

// Enqueue queues ev for sink.
func (t *Txn) Enqueue(sink string, ev *sdk.Event) error {
	b, err := json.Marshal(Queued{Event: *ev})
	if err != nil {
		return err
	}
	if err := t.txn.Set(queueKey(prefixQueue, sink, ev), b); err != nil {
		return fmt.Errorf("queue event %s for sink %s: %w", ev.ID, sink, err)
	}
	return nil
}

// Queue returns up to limit events waiting for sink, oldest first.
func (t *Txn) Queue(sink string, limit int) ([]Queued, error) {
	return t.queued(prefixQueue, sink, limit)
}

// DeadLetters returns up to limit events sink refused for good.
func (t *Txn) DeadLetters(sink string, limit int) ([]Queued, error) {
	return t.queued(prefixDead, sink, limit)
}

func (t *Txn) queued(prefix, sink string, limit int) ([]Queued, error) {
	var out []Queued
	err := t.forEach([]byte(prefix+sink+"/"), nil, nil, false, true, func(k, v []byte) error {
		var q Queued
		if err := json.Unmarshal(v, &q); err != nil {
			return fmt.Errorf("decode queued event: %w", err)
		}
		q.Key = append([]byte(nil), k...)
		out = append(out, q)
		if limit > 0 && len(out) >= limit {
			return errStopIteration
		}
		return nil
	})
	if errors.Is(err, errStopIteration) {
		err = nil
	}
	return out, err
}

// Delivered removes a queued event.
func (t *Txn) Delivered(q *Queued) error { return t.txn.Delete(q.Key) }

// Retry records a failed attempt on a queued event.
func (t *Txn) Retry(q *Queued, reason string) error {
	q.Attempts++
	q.LastError = reason
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return t.txn.Set(q.Key, b)
}

// Bury moves a queued event to the dead letters with the sink's reason.
func (t *Txn) Bury(sink string, q *Queued, reason string) error {
	q.Attempts++
	q.LastError = reason
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	if err := t.txn.Set(queueKey(prefixDead, sink, &q.Event), b); err != nil {
		return err
	}
	return t.txn.Delete(q.Key)
}

// QueueStats counts what waits for sink and how old the oldest is.
func (t *Txn) QueueStats(sink string, now time.Time) (depth int, oldest time.Duration, dead int, err error) {
	prefix := []byte(prefixQueue + sink + "/")
	err = t.forEach(prefix, nil, nil, false, false, func(k, _ []byte) error {
		if depth == 0 && len(k) >= len(prefix)+8 {
			oldest = now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))))
		}
		depth++
		return nil
	})
	if err != nil {
		return
	}
	err = t.forEach([]byte(prefixDead+sink+"/"), nil, nil, false, false, func(_, _ []byte) error { dead++; return nil })
	return
}
