package model

import (
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// RunStatus is how a job run ended.
type RunStatus string

// Run statuses. Only RunSucceeded changes assets and deviations, and
// RunPartial through the parts it finished.
const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunTimedOut  RunStatus = "timeout"
	RunCancelled RunStatus = "cancelled"
	// RunPartial: some parts of a split run finished and were applied,
	// others failed and changed nothing.
	RunPartial     RunStatus = "partial"
	RunSkipped     RunStatus = "skipped"
	RunInterrupted RunStatus = "interrupted" // the daemon died while it ran
)

// Run is one execution of a job.
type Run struct {
	ID      string     `json:"id"`
	Tenant  string     `json:"tenant"`
	Job     string     `json:"job"`
	Source  string     `json:"source"`
	Trigger string     `json:"trigger"` // schedule, manual, cli
	Status  RunStatus  `json:"status"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	Error   string     `json:"error,omitempty"`
	// Hosts counts the observations the run produced.
	Hosts    int        `json:"hosts"`
	Scope    *sdk.Scope `json:"scope,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
}

// Duration is how long the run took, or has taken so far.
func (r *Run) Duration(now time.Time) time.Duration {
	if r.End != nil {
		return r.End.Sub(r.Start)
	}
	return now.Sub(r.Start)
}
