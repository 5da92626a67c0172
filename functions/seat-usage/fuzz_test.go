package seatusage

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"fulfillment/shared/domain/subscription"
)

// FuzzSeatReport posts arbitrary bodies with arbitrary tokens or the genuine
// token of the target the body names: seat-usage answers 200, 400, 401 or
// 404, never panics or 5xx. ns-fuzz has a running subscription (stored
// afresh before each input), so well-formed reports for it are counted.
func FuzzSeatReport(f *testing.F) {
	fx := setup(f)
	f.Add([]byte(`{"date":"2026-02-01","namespace_id":"ns-fuzz","billable_users_count":12,"max_historical_user_count":12}`), "", true)
	f.Add([]byte(`{"date":"2026-02-01","namespace_id":"ns-fuzz","billable_users_count":12}`), "not-the-token", false)
	f.Add([]byte(`{"date":"2026-02-01","instance_id":"inst-1","billable_users_count":3}`), "", true)
	f.Add([]byte(`{"date":"2026-02-01","namespace_id":"ns-fuzz","instance_id":"inst-1"}`), "", true)
	f.Add([]byte(`{"date":"yesterday","namespace_id":"ns-fuzz","billable_users_count":-1}`), "", true)
	f.Add([]byte(`{"date":2026,"namespace_id":7,"billable_users_count":"12"}`), "", true)
	f.Add([]byte(`{"date":"2026-02-01","namespace_id":"ns-fuzz","billable_users_count":1e99}`), "", true)
	f.Add([]byte("not json"), "", false)
	f.Add([]byte(nil), "", true)
	f.Fuzz(func(t *testing.T, body []byte, token string, sign bool) {
		fx.seed(t, "sub-fuzz", "ns-fuzz", subscription.Active)
		if sign {
			var r Report
			_ = json.Unmarshal(body, &r) // whatever it names, even half-read
			token = Token(key, r.target())
		}
		// What an HTTP client can send at all: no control characters.
		token = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, token)
		req, err := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound:
		default:
			t.Fatalf("answered %d", resp.StatusCode)
		}
	})
}
