package checkoutwebhook

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/stripe"
)

// FuzzWebhook posts arbitrary bodies with arbitrary or genuine signatures:
// the webhook answers 2xx, 400, 401 or 413, never panics or 5xx.
func FuzzWebhook(f *testing.F) {
	fx := setup(f)
	valid := checkoutPayload("evt_fuzz_seed", nil)
	f.Add(valid, "", true)
	f.Add(valid, "t=1,v1=00", false)
	f.Add([]byte(`{"id":"evt_x","type":"invoice.paid","data":{"object":{"metadata":{}}}}`), "", true)
	f.Add([]byte(`{"id":"","type":"","data":null}`), "", true)
	f.Add([]byte("not json"), "", true)
	f.Add([]byte(`{}`), "t=,v1=,v0=zz,,=", false)
	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		if sign {
			header = stripe.Sign(body, time.Now(), secret)
		}
		// What an HTTP client can send at all: no control characters.
		header = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, header)
		req, err := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Stripe-Signature", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d", resp.StatusCode)
		}
	})
}
