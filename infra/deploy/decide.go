// Package deploy ships one function at a time: a new revision with no
// traffic, a canary share, a watch of the canary's error rate and latency,
// then promotion or rollback. Decide is the pure part (no I/O, table tests);
// Plan lists the commands; Run executes them through an Executor and reads
// the canary's metrics through a Metrics source.
package deploy

import (
	"fmt"
	"time"
)

// Thresholds a canary must stay within to be promoted.
type Thresholds struct {
	MaxErrorRate float64       // failed / all requests, e.g. 0.01 for 1%
	MaxP95       time.Duration // 95th percentile request latency
	MinRequests  int           // fewer than this at the end is too little to judge
}

// Sample is what the canary revision served since it got traffic.
type Sample struct {
	Requests int           // every request (Pub/Sub pushes included)
	Errors   int           // 5xx answers (Pub/Sub redelivers those) and dead-lettered events
	P95      time.Duration // 95th percentile latency; 0 when unknown
}

// ErrorRate is Errors / Requests, 0 with no requests.
func (s Sample) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Verdict is what to do with the canary now.
type Verdict int

const (
	Watch    Verdict = iota // keep the canary share and look again later
	Promote                 // send it all the traffic
	Rollback                // send all traffic back to the previous revision
)

func (v Verdict) String() string {
	return [...]string{"watch", "promote", "rollback"}[v]
}

// Decision is a verdict and why.
type Decision struct {
	Verdict Verdict
	Reason  string
}

// Decide judges the canary after watching it for elapsed out of watchFor.
// A threshold crossed rolls back at once, as soon as there are enough
// requests to trust the rate; otherwise the canary is watched to the end and
// promoted if it served enough requests.
func Decide(t Thresholds, s Sample, elapsed, watchFor time.Duration) Decision {
	enough := s.Requests >= t.MinRequests && s.Requests > 0
	if enough && s.ErrorRate() > t.MaxErrorRate {
		return Decision{Rollback, fmt.Sprintf("error rate %.2f%% (%d of %d) above %.2f%%", 100*s.ErrorRate(), s.Errors, s.Requests, 100*t.MaxErrorRate)}
	}
	if enough && t.MaxP95 > 0 && s.P95 > t.MaxP95 {
		return Decision{Rollback, fmt.Sprintf("p95 latency %s above %s", s.P95, t.MaxP95)}
	}
	if elapsed < watchFor {
		return Decision{Watch, fmt.Sprintf("%d requests, error rate %.2f%%, p95 %s after %s of %s", s.Requests, 100*s.ErrorRate(), s.P95, elapsed, watchFor)}
	}
	if s.Requests < t.MinRequests {
		return Decision{Rollback, fmt.Sprintf("only %d requests in %s, fewer than the %d needed to judge", s.Requests, watchFor, t.MinRequests)}
	}
	return Decision{Promote, fmt.Sprintf("%d requests, error rate %.2f%%, p95 %s within thresholds for %s", s.Requests, 100*s.ErrorRate(), s.P95, watchFor)}
}
