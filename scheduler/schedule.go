package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts what cron.ParseStandard does: five fields or a
// descriptor, with an optional CRON_TZ= prefix.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks that schedule parses and can fire.
func Validate(schedule string) error {
	_, err := parse(schedule, time.Now())
	return err
}

// IntervalOf returns the nominal interval of schedule as Interval
// defines it, for callers that need it before a job is scheduled.
func IntervalOf(schedule string) (time.Duration, error) {
	now := time.Now()
	sched, err := parse(schedule, now)
	if err != nil {
		return 0, err
	}
	return interval(sched, now), nil
}

// parse is cron's parser plus the checks it lacks: cron silently turns
// "@every 0s", "@every -5m" and "@every 500ms" into "every second", which
// for a scanner is a misconfiguration worth refusing, and it accepts specs
// such as "0 0 30 2 *" that never fire.
func parse(schedule string, now time.Time) (cron.Schedule, error) {
	if strings.TrimSpace(schedule) == "" {
		return nil, errors.New("invalid schedule: empty")
	}
	sched, err := parser.Parse(schedule)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", schedule, err)
	}
	if _, rest, ok := strings.Cut(schedule, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("invalid schedule %q: %w", schedule, err)
		}
		if d < time.Second {
			return nil, fmt.Errorf("invalid schedule %q: interval must be at least 1s", schedule)
		}
	}
	if sched.Next(now).IsZero() {
		return nil, fmt.Errorf("invalid schedule %q: never fires", schedule)
	}
	return sched, nil
}

func interval(sched cron.Schedule, now time.Time) time.Duration {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return every.Delay
	}
	first := sched.Next(now)
	return sched.Next(first).Sub(first)
}
