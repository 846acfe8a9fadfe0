package sdk

import (
	"context"
	"encoding/json"
	"time"
)

// Sink takes deviation events somewhere else: a monitoring system, a chat
// channel, a ticket queue. The host calls Deliver with the events queued
// for the sink and retries, with backoff, each event that was not acked
// as delivered.
type Sink interface {
	Describe(ctx context.Context) (Description, error)
	// Validate checks a configuration without contacting anything; a bad
	// one yields a *ValidationError.
	Validate(ctx context.Context, config json.RawMessage) error
	// Deliver returns one Ack per event. An error means none was taken.
	Deliver(ctx context.Context, req DeliverRequest) ([]Ack, error)
}

// DeliverRequest is one delivery attempt.
type DeliverRequest struct {
	Config json.RawMessage `json:"config"`
	Events []Event         `json:"events"`
}

// Event kinds.
const (
	EventOpened          = "opened"
	EventSeverityChanged = "severity_changed"
	EventAcknowledged    = "acknowledged"
	EventUnacknowledged  = "unacknowledged"
	EventResolved        = "resolved"
	// EventFlapping: the deviation opens and resolves too often to be
	// alerted each time; sent once as it starts flapping, followed by
	// opened or resolved once it settles.
	EventFlapping = "flapping"
)

// Event is one change in the life of a deviation.
type Event struct {
	// ID is stable across retries, for receivers that deduplicate.
	ID        string         `json:"id"`
	Kind      string         `json:"kind"`
	Time      time.Time      `json:"time"`
	Tenant    string         `json:"tenant"`
	Deviation DeviationEvent `json:"deviation"`
}

// DeviationEvent is the deviation as it stands after the event.
type DeviationEvent struct {
	ID         string    `json:"id"`
	Rule       string    `json:"rule"`
	Kind       string    `json:"kind"`
	Severity   string    `json:"severity"`
	State      string    `json:"state"`
	AssetID    string    `json:"asset_id"`
	Host       string    `json:"host"`
	Protocol   Protocol  `json:"protocol,omitempty"`
	Port       uint16    `json:"port,omitempty"`
	Detail     string    `json:"detail"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	AckedBy    string    `json:"acked_by,omitempty"`
	AckComment string    `json:"ack_comment,omitempty"`
	// RuleActive counts the active deviations of this host under this
	// rule after the event (this one included while it is active), and
	// RuleWorst is their highest severity: what a monitoring service per
	// (host, rule) shows, so resolving one deviation of two does not turn
	// the service green.
	RuleActive int    `json:"rule_active"`
	RuleWorst  string `json:"rule_worst,omitempty"`
	// HostActive and HostWorst are the same over all rules of the host.
	HostActive int    `json:"host_active"`
	HostWorst  string `json:"host_worst,omitempty"`
}

// Ack is a sink's answer for one event.
type Ack struct {
	EventID   string `json:"event_id"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
	// Permanent marks an event no retry will deliver.
	Permanent bool `json:"permanent,omitempty"`
}
