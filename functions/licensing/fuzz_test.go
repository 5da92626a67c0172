package licensing

import (
	"net/http"
	"testing"
	"time"
)

// FuzzEndpoints posts arbitrary bodies to both endpoints: licensing
// answers 200, 400, 413, 422 or 429, never a 5xx, and never panics.
func FuzzEndpoints(f *testing.F) {
	fx := setup(f, Policy{PerIPAttempts: 1 << 30, PerIPWindow: time.Hour, SeatLinksPerIP: 1 << 30, SeatLinksPerIPWindow: time.Hour})
	f.Add([]byte(`{"query":"mutation { cloudActivationActivate(input:{activationCode:\"x\", instanceIdentifier:\"i\"}) { licenseKey errors } }"}`), true)
	f.Add([]byte(`{"query":"{ ok }","variables":{"a":[1,{"b":null}]}}`), true)
	f.Add([]byte(`{"query":"mutation($c: String!) { cloudActivationActivate(input:{activationCode:$c, instanceIdentifier:$c}) { errors } }","variables":{"c":null}}`), true)
	f.Add([]byte(`{"query":"query { __schema { types { name } } }"}`), true)
	f.Add([]byte(`{"license_key":"a.b","timestamp":"2026-01-15T00:00:00Z","billable_users_count":3}`), false)
	f.Add([]byte(`{"license_key":"a.b","date":"2026-01-15","active_users":1e40}`), false)
	f.Add([]byte(`{"license_key":"","timestamp":null}`), false)
	f.Add([]byte("\x00\xff"), false)
	f.Fuzz(func(t *testing.T, body []byte, graphql bool) {
		path := "/api/v1/seat_links"
		if graphql {
			path = "/graphql"
		}
		status, b := fx.post(t, path, body)
		switch status {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		default:
			t.Fatalf("%s answered %d %s", path, status, b)
		}
	})
}
