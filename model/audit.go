package model

import "time"

// AuditRecord is one thing someone did, or tried to do: who (the API
// token's name, "anonymous", or the daemon itself), when, what to what,
// from where, and how it ended.
type AuditRecord struct {
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	Actor  string    `json:"actor"`
	From   string    `json:"from,omitempty"`
	// Action is ack, unack, run, import, reload, tokens or denied.
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Status is the HTTP status of an API request (0 for the daemon's own).
	Status int `json:"status,omitempty"`
}
