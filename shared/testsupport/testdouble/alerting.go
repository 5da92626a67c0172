package testdouble

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
)

// Slack doubles an incoming webhook. Any path is accepted, since a real
// webhook URL carries its secret in the path.
type Slack struct{ *Server }

// StartSlack starts a Slack webhook double.
func StartSlack(addr string) (*Slack, error) {
	s, err := start(addr, http.HandlerFunc(slackWebhook), options{
		headers:     []string{"Content-Type"},
		contentType: "text/plain",
		faultBody:   slackFaultBody,
	})
	if err != nil {
		return nil, err
	}
	return &Slack{s}, nil
}

// slackWebhook answers like hooks.slack.com: 200 "ok", or a 400 with a
// plain-text error code.
func slackWebhook(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("invalid_payload"))
		return
	}
	msg, err := decodeObject(r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("invalid_payload"))
		return
	}
	if _, hasText := msg["text"].(string); !hasText && msg["blocks"] == nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("no_text"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func slackFaultBody(status int) []byte {
	if status == http.StatusTooManyRequests {
		return []byte("rate_limited")
	}
	return []byte("service_unavailable")
}

// PagerDuty doubles the Events API v2 (POST /v2/enqueue).
type PagerDuty struct{ *Server }

// StartPagerDuty starts a PagerDuty Events API v2 double.
func StartPagerDuty(addr string) (*PagerDuty, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", pagerDutyEnqueue)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "not found", "message": "Not Found"})
	})
	s, err := start(addr, mux, options{headers: []string{"Content-Type"}})
	if err != nil {
		return nil, err
	}
	return &PagerDuty{s}, nil
}

func pagerDutyEnqueue(w http.ResponseWriter, r *http.Request) {
	ev, err := decodeObject(r)
	if err != nil {
		pdInvalid(w, "Could not parse the event: "+err.Error())
		return
	}
	if errs := pdValidate(ev); len(errs) > 0 {
		pdInvalid(w, errs...)
		return
	}
	key, _ := ev["dedup_key"].(string)
	if key == "" {
		key = randomHex(16) // PagerDuty generates one when absent
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"status": "success", "message": "Event processed", "dedup_key": key,
	})
}

// pdValidate applies the documented required fields and limits.
func pdValidate(ev map[string]any) []string {
	var errs []string
	if key, _ := ev["routing_key"].(string); len(key) != 32 {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	}
	action, _ := ev["event_action"].(string)
	if !slices.Contains([]string{"trigger", "acknowledge", "resolve"}, action) {
		errs = append(errs, "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
	}
	if key, _ := ev["dedup_key"].(string); len(key) > 255 {
		errs = append(errs, "'dedup_key' is too long (maximum is 255 characters)")
	}
	if action != "trigger" {
		return errs
	}
	p, _ := ev["payload"].(map[string]any)
	summary, _ := p["summary"].(string)
	switch {
	case summary == "":
		errs = append(errs, "'payload.summary' is missing or blank")
	case len(summary) > 1024:
		errs = append(errs, "'payload.summary' is too long (maximum is 1024 characters)")
	}
	if src, _ := p["source"].(string); src == "" {
		errs = append(errs, "'payload.source' is missing or blank")
	}
	sev, _ := p["severity"].(string)
	if !slices.Contains([]string{"critical", "error", "warning", "info"}, sev) {
		errs = append(errs, "'payload.severity' is invalid (must be one of: critical, error, warning, info)")
	}
	return errs
}

func pdInvalid(w http.ResponseWriter, errs ...string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"status": "invalid event", "message": "Event object is invalid", "errors": errs,
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
