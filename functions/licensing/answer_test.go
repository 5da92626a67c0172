package licensing

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"fulfillment/shared/domain/subscription"
)

// TestSeatLinkAnswerIsWhatGitLabsWorkerReads decodes the answers as
// GitLab's SyncSeatLinkRequestWorker reads them, by name and without our
// struct: `license` (a new key, only when the one sent is stale),
// `next_reconciliation_date` and `display_alert_from` (Date.parse; when
// either is blank the worker deletes its upcoming reconciliation),
// `future_subscriptions` (an array), and on a refusal the body's `errors`.
func TestSeatLinkAnswerIsWhatGitLabsWorkerReads(t *testing.T) {
	fx := setup(t, Policy{})
	key := fx.activated(t, "sub-wire", 10, "uuid-wire")
	fx.clock.set(on(t, "2026-01-20"))
	answer := func(key, day string, want int) map[string]any {
		t.Helper()
		status, b := fx.post(t, "/api/v1/seat_links", seatLinkBody(key, "uuid-wire", on(t, day), 5))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || status != want {
			t.Fatalf("%s: %d %s; want %d", day, status, b, want)
		}
		return m
	}
	date := func(m map[string]any, name string) time.Time {
		t.Helper()
		s, ok := m[name].(string)
		d, err := time.Parse(time.DateOnly, s)
		if !ok || err != nil {
			t.Fatalf("%s = %#v, want a YYYY-MM-DD string", name, m[name])
		}
		return d
	}

	current := answer(key, "2026-01-16", http.StatusOK)
	if _, ok := current["license"]; ok || current["success"] != true {
		t.Fatalf("answer to the current key: %v; want success and no license", current)
	}
	if subs, ok := current["future_subscriptions"].([]any); !ok || len(subs) != 0 {
		t.Fatalf("future_subscriptions = %#v, want an empty array", current["future_subscriptions"])
	}
	next, alert := date(current, "next_reconciliation_date"), date(current, "display_alert_from")
	if !next.Equal(time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC)) || next.Sub(alert) != alertLead {
		t.Fatalf("reconciliation %s, alert from %s; want 2026-04-15 and a week before", next, alert)
	}

	// Seats added: the key sent is stale, and the answer carries the new one.
	fx.change(t, "sub-wire", "seats", func(s *subscription.Subscription) subscription.Change {
		c, err := s.AddSeats(2, fx.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
	stale := answer(key, "2026-01-17", http.StatusOK)
	newKey, ok := stale["license"].(string)
	if !ok || fx.verify(t, newKey).Seats != 12 {
		t.Fatalf("answer to a stale key: license %#v, want a key for 12 seats", stale["license"])
	}

	// Once the term's three quarterly reconciliations are done (renewal's
	// ticks, driven here), none is left: both dates are absent.
	for q, day := range []string{"2026-04-15", "2026-07-15", "2026-10-15"} {
		fx.change(t, "sub-wire", "recon-"+day, func(s *subscription.Subscription) subscription.Change {
			return s.NoticeReconciliation(q+1, on(t, day))
		})
	}
	fx.clock.set(on(t, "2026-12-20"))
	late := answer(newKey, "2026-12-19", http.StatusOK)
	if _, ok := late["next_reconciliation_date"]; ok {
		t.Fatalf("answer with no reconciliation left: %v", late)
	}
	if _, ok := late["display_alert_from"]; ok {
		t.Fatalf("answer with no reconciliation left: %v", late)
	}

	// A refusal: non-2xx with `errors` at the top, which the worker raises with.
	refused := answer("not-a-key", "2026-12-19", http.StatusUnprocessableEntity)
	if msg, ok := refused["errors"].(string); !ok || msg != errUnknownKey || refused["success"] != false {
		t.Fatalf("refusal %v", refused)
	}
}

// TestSeatLinkDayIsTheInstancesDay: the day a link counts for is its
// timestamp's date in the offset the instance wrote (Ruby's Time#iso8601:
// "Z", "+00:00" or the instance's zone), or its date when an older GitLab
// sends one.
func TestSeatLinkDayIsTheInstancesDay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	three := 3
	for _, c := range []struct{ timestamp, date, day string }{
		{"2026-03-20T23:30:00Z", "", "2026-03-20"},
		{"2026-03-20T23:30:00+00:00", "", "2026-03-20"},
		{"2026-03-20T23:30:00-05:00", "", "2026-03-20"}, // 04:30 UTC on the 21st: the instance's 20th
		{"2026-03-21T01:30:00+02:00", "", "2026-03-21"},
		{"2026-03-20T23:30:00.123+00:00", "", "2026-03-20"},
		{"2026-03-21T10:00:00Z", "2026-03-19", "2026-03-19"},
	} {
		u, err := SeatLink{LicenseKey: "k", Timestamp: c.timestamp, Date: c.date, BillableUsersCount: &three}.parse(now)
		if err != nil || u.date.Format(time.DateOnly) != c.day {
			t.Errorf("timestamp %q date %q: day %s %v, want %s", c.timestamp, c.date, u.date.Format(time.DateOnly), err, c.day)
		}
	}
}
