package licensing

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/store"
)

// TestSeatLinksAreRateLimited: past the per-address limit and past the
// per-license limit a seat link is answered 429 with Retry-After until its
// window ends, and nothing of it is stored or counted.
func TestSeatLinksAreRateLimited(t *testing.T) {
	fx := setup(t, Policy{TrustForwardedFor: true,
		SeatLinksPerIP: 4, SeatLinksPerIPWindow: time.Minute, SeatLinksPerLicense: 3, SeatLinksPerLicenseWindow: 24 * time.Hour})
	key := fx.activated(t, "sub-rate", 10, "uuid-rate")
	fx.clock.set(on(t, "2026-01-20")) // 10:00 UTC
	link := func(from, day string, users int) (*http.Response, string) {
		resp, b := fx.postFrom(t, from, "/api/v1/seat_links", seatLinkBody(key, "uuid-rate", on(t, day), users))
		return resp, string(b)
	}

	// Per license: three links a day, from anywhere; the fourth is refused.
	for i, day := range []string{"2026-01-16", "2026-01-17", "2026-01-18"} {
		if resp, b := link("203.0.113."+string(rune('1'+i)), day, 11+i); resp.StatusCode != http.StatusOK {
			t.Fatalf("link %d: %d %s", i+1, resp.StatusCode, b)
		}
	}
	resp, b := link("203.0.113.9", "2026-01-19", 20)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(b, errTooManyLicensed) || resp.Header.Get("Retry-After") != "50400" {
		t.Fatalf("fourth link of the day: %d Retry-After %q %s; want 429, 50400 s (to midnight UTC)", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if n := fx.count(t, store.SeatReports); n != 3 {
		t.Fatalf("%d seat reports stored, want the 3 within the limit", n)
	}
	if s := fx.sub(t, "sub-rate"); s.MaxSeatsUsed != 13 {
		t.Fatalf("max seats used %d: the limited link of 20 counted", s.MaxSeatsUsed)
	}
	// The next day's window takes it.
	fx.clock.set(on(t, "2026-01-21"))
	if resp, b := link("203.0.113.9", "2026-01-19", 20); resp.StatusCode != http.StatusOK || fx.sub(t, "sub-rate").MaxSeatsUsed != 20 {
		t.Fatalf("next day: %d %s", resp.StatusCode, b)
	}

	// Per address: four a minute from one caller, even with keys that are
	// not ours; another caller is not held back by it.
	for range 4 {
		if resp, _ := fx.postFrom(t, "198.51.100.7", "/api/v1/seat_links", seatLinkBody("not-a-key", "x", fx.clock.Now(), 1)); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("within the address limit: %d", resp.StatusCode)
		}
	}
	resp, b = link("10.0.0.1, 198.51.100.7", "2026-01-20", 30) // a caller's own entry before ours changes nothing
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(b, errTooManyLinks) || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("past the address limit: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if s := fx.sub(t, "sub-rate"); s.MaxSeatsUsed != 20 || fx.count(t, store.SeatReports) != 4 {
		t.Fatalf("the address-limited link was stored: max %d, %d reports", s.MaxSeatsUsed, fx.count(t, store.SeatReports))
	}
	if resp, b := link("198.51.100.8", "2026-01-20", 30); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d %s", resp.StatusCode, b)
	}
}
