package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// The audit log: one record per key, in time order per tenant.
//
//	u/TENANT/TIME(8)RANDOM(4)
const prefixAudit = "u/"

func auditPrefix(tenant string) []byte { return []byte(prefixAudit + tenant + "/") }

// AppendAudit adds a record to the tenant's audit log.
func (t *Txn) AppendAudit(r *model.AuditRecord) error {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	k := binary.BigEndian.AppendUint64(auditPrefix(r.Tenant), uint64(r.Time.UnixNano()))
	k = append(k, salt[:]...)
	b, err := encode(r)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := t.txn.Set(k, b); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	t.links = append(t.links, link{tenant: r.Tenant, kind: linkAudit, time: r.Time, digest: sha256.Sum256(b),
		ref: append([]byte(nil), k[len(auditPrefix(r.Tenant)):]...)})
	return nil
}

// Audit returns the tenant's records from from to to (zero: open ends),
// oldest first, at most limit.
func (t *Txn) Audit(tenant string, from, to time.Time, limit int) ([]model.AuditRecord, error) {
	prefix := auditPrefix(tenant)
	start := prefix
	if !from.IsZero() {
		start = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(from.UnixNano()))
	}
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []model.AuditRecord
	for it.Seek(start); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
		var r model.AuditRecord
		if err := it.Item().Value(func(v []byte) error { return decode(v, &r) }); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if !to.IsZero() && r.Time.After(to) {
			break
		}
		out = append(out, r)
	}
	return out, nil
}
