package alerting

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"fulfillment/shared/runtime/failure"
)

// Slack limits: a section's text and a field's text; at most 10 fields.
const (
	slackTextMax  = 3000
	slackFieldMax = 2000
	slackFields   = 10
)

// Slack posts alerts to an incoming webhook.
type Slack struct {
	webhookURL string
	hc         *http.Client
}

// NewSlack returns a notifier for webhookURL. A nil hc gets a 10 s timeout.
func NewSlack(webhookURL string, hc *http.Client) *Slack {
	return &Slack{webhookURL: webhookURL, hc: defaultClient(hc)}
}

// Notify posts a to the channel. Slack answers 200 "ok"; 4xx (bad payload,
// revoked or archived webhook) is permanent, 429 and 5xx transient.
func (s *Slack) Notify(ctx context.Context, a Alert) error {
	if a.Summary == "" {
		return fmt.Errorf("alerting.Notify: %w", failure.Permanentf("empty summary"))
	}
	if err := postJSON(ctx, s.hc, "slack", s.webhookURL, slackMessage(a)); err != nil {
		return fmt.Errorf("alerting.Notify: %w", err)
	}
	return nil
}

// slackMessage is the webhook body: "text" is the notification fallback,
// "blocks" the layout shown in the channel.
func slackMessage(a Alert) map[string]any {
	headline := fmt.Sprintf("[%s] %s", strings.ToUpper(severityOr(a.Severity)), a.Summary)
	blocks := []map[string]any{
		{"type": "section", "text": mrkdwn(truncate("*"+escape(headline)+"*", slackTextMax))},
	}
	if fields := detailFields(a.Details); len(fields) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	blocks = append(blocks, map[string]any{
		"type":     "context",
		"elements": []map[string]any{mrkdwn(escape(contextLine(a)))},
	})
	return map[string]any{"text": truncate(escape(headline), slackTextMax), "blocks": blocks}
}

func contextLine(a Alert) string {
	parts := []string{"source: " + a.Source}
	if a.DedupKey != "" {
		parts = append(parts, "dedup: "+a.DedupKey)
	}
	return truncate(strings.Join(parts, " · "), slackTextMax)
}

// detailFields renders details as up to 10 "*key*\nvalue" fields, sorted so
// repeated alerts look the same.
func detailFields(details map[string]any) []map[string]any {
	keys := make([]string, 0, len(details))
	for k := range details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var fields []map[string]any
	for _, k := range keys[:min(len(keys), slackFields)] {
		text := fmt.Sprintf("*%s*\n%v", escape(k), escape(fmt.Sprint(details[k])))
		fields = append(fields, mrkdwn(truncate(text, slackFieldMax)))
	}
	return fields
}

func mrkdwn(text string) map[string]any {
	return map[string]any{"type": "mrkdwn", "text": text}
}

// escape applies the three escapes Slack requires in message text.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func severityOr(s string) string {
	if s == "" {
		return "error"
	}
	return s
}
