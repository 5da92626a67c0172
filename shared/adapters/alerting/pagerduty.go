package alerting

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"fulfillment/shared/runtime/failure"
)

// DefaultEventsURL is PagerDuty's Events API host.
const DefaultEventsURL = "https://events.pagerduty.com"

// PagerDuty limits on summary and dedup key length.
const (
	pdSummaryMax  = 1024
	pdDedupKeyMax = 255
)

var pdSeverities = []string{"critical", "error", "warning", "info"}

// PagerDuty triggers alerts through the Events API v2.
type PagerDuty struct {
	eventsURL  string
	routingKey string
	hc         *http.Client
}

// NewPagerDuty returns a trigger client for eventsURL (DefaultEventsURL in
// production) and one integration's routing key. A nil hc gets a 10 s
// timeout.
func NewPagerDuty(eventsURL, routingKey string, hc *http.Client) *PagerDuty {
	return &PagerDuty{eventsURL: strings.TrimRight(eventsURL, "/"), routingKey: routingKey, hc: defaultClient(hc)}
}

// pdEvent is the Events API v2 body.
type pdEvent struct {
	RoutingKey  string    `json:"routing_key"`
	EventAction string    `json:"event_action"`
	DedupKey    string    `json:"dedup_key,omitempty"`
	Payload     pdPayload `json:"payload"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Trigger opens (or, with the same DedupKey, adds to) an alert. PagerDuty
// answers 202; 400 (invalid event) is permanent, 429 and 5xx transient.
// An empty Severity means "error".
func (p *PagerDuty) Trigger(ctx context.Context, a Alert) error {
	ev, err := p.event(a, time.Now())
	if err != nil {
		return fmt.Errorf("alerting.Trigger: %w", failure.Permanent(err))
	}
	if err := postJSON(ctx, p.hc, "pagerduty", p.eventsURL+"/v2/enqueue", ev); err != nil {
		return fmt.Errorf("alerting.Trigger: %w", err)
	}
	return nil
}

// event builds the body, rejecting what PagerDuty would reject anyway.
func (p *PagerDuty) event(a Alert, now time.Time) (pdEvent, error) {
	sev := severityOr(a.Severity)
	switch {
	case p.routingKey == "":
		return pdEvent{}, fmt.Errorf("empty routing key")
	case a.Summary == "" || a.Source == "":
		return pdEvent{}, fmt.Errorf("summary and source are required")
	case !slices.Contains(pdSeverities, sev):
		return pdEvent{}, fmt.Errorf("severity %q is not one of %v", a.Severity, pdSeverities)
	case len(a.DedupKey) > pdDedupKeyMax:
		// Cutting the key would merge unrelated alerts.
		return pdEvent{}, fmt.Errorf("dedup key longer than %d bytes", pdDedupKeyMax)
	}
	return pdEvent{
		RoutingKey:  p.routingKey,
		EventAction: "trigger",
		DedupKey:    a.DedupKey,
		Payload: pdPayload{
			Summary:       truncate(a.Summary, pdSummaryMax),
			Source:        a.Source,
			Severity:      sev,
			Timestamp:     now.UTC().Format(time.RFC3339),
			CustomDetails: a.Details,
		},
	}, nil
}
