// Package alerting tells people about failures: Slack for the team channel,
// PagerDuty for whoever is on call.
package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"fulfillment/shared/runtime/failure"
)

// Alert is one thing worth telling a human about.
type Alert struct {
	// DedupKey groups repeats of the same problem into one PagerDuty alert.
	DedupKey string
	Summary  string
	// Source is where the problem is, e.g. the function name.
	Source string
	// Severity is critical, error, warning or info (PagerDuty's values).
	Severity string
	Details  map[string]any
}

func defaultClient(hc *http.Client) *http.Client {
	if hc == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	return hc
}

// postJSON sends v and maps the answer: 2xx is nil, the rest goes through
// failure.FromResponse; network errors stay transient. Errors name the
// service and host, never the URL: a Slack webhook's path is its secret.
func postJSON(ctx context.Context, hc *http.Client, service, url string, v any) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // keep Slack's &lt; escapes readable on the wire
	if err := enc.Encode(v); err != nil {
		return failure.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return failure.Permanent(failure.Call(service, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return failure.Call(service, err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return failure.FromResponse(service, resp, respBody)
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
