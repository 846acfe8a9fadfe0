package model

import "time"

// Checkpoint is a signed statement of where a tenant's chain of history
// and audit records stood: its entry Seq has hash Head. Kept in the store
// and, more to the point, exported to storage that the store's disk does
// not control, it lets verify tell a rewritten chain from the true one.
type Checkpoint struct {
	Tenant string    `json:"tenant"`
	Seq    uint64    `json:"seq"`
	Head   string    `json:"head"` // hex SHA-256 of entry Seq
	Time   time.Time `json:"time"`
	// PublicKey is the hex ed25519 key that signed it; verify trusts only
	// the key it is given, this one names which key that was.
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"` // hex ed25519 signature
}
