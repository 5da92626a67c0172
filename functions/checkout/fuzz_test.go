package checkout_test

import (
	"bytes"
	"net/http"
	"testing"
)

// FuzzCheckoutRequest posts arbitrary purchases from an allowed caller: the
// checkout answers a clear 2xx or 4xx (502 only if Stripe refuses what it
// was sent), never panics, and never a 5xx of its own.
func FuzzCheckoutRequest(f *testing.F) {
	fx := setup(f, false)
	f.Add([]byte(`{"namespace_id":"ns-f","plan_code":"premium","seats":3,"buyer":{"name":"A","email":"a@example.com"},"success_url":"https://x.example/ok","cancel_url":"https://x.example/no"}`), "k1")
	f.Add([]byte(`{"instance_id":"i-1","plan_code":"ultimate","seats":1,"term_months":36,"compute_minutes":999999,"buyer":{"name":"A","email":"a@example.com"},"success_url":"http://x.example/ok","cancel_url":"http://x.example/no"}`), "k2")
	f.Add([]byte(`{"namespace_id":"ns-f","plan_code":"premium","seats":-3,"storage_gb":1e12,"buyer":{"name":"A","email":"a@example.com"},"success_url":"https://x.example/ok","cancel_url":"https://x.example/no"}`), "k3")
	f.Add([]byte(`{"namespace_id":"ns-f","instance_id":"i-1","plan_code":"premium","seats":3}`), "k4")
	f.Add([]byte(`{"plan_code":7,"seats":"3","unknown":true}`), "k5")
	f.Add([]byte(`not json`), "")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		req, err := http.NewRequest(http.MethodPost, fx.srv.URL+"/checkouts", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token())
		if key != "" && !bytes.ContainsAny([]byte(key), "\r\n\x00") {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip("not a request a client can send:", err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusBadGateway:
		default:
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
	})
}
