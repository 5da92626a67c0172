package stripe

import (
	"testing"
	"time"
)

// FuzzVerifySignature: any header parses without panicking, and a header
// this package signs always verifies for its own payload.
func FuzzVerifySignature(f *testing.F) {
	now := time.Now()
	f.Add([]byte(`{"id":"evt_1"}`), Sign([]byte(`{"id":"evt_1"}`), now, "whsec_a"))
	f.Add([]byte(`{}`), "t=abc,v1=zz")
	f.Add([]byte(``), "t=1,v1=,v1=00,v0=ff,,=,t=2")
	f.Add([]byte(`x`), "")
	f.Add([]byte(`x`), "t=99999999999999999999,v1=0")
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		_ = VerifySignature(payload, header, []string{"whsec_a", "whsec_b"})
		if err := VerifySignature(payload, Sign(payload, time.Now(), "whsec_b"), []string{"whsec_a", "whsec_b"}); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
	})
}

// FuzzParseAndNormalize: any body decodes to an event or an error, and a
// decoded event normalizes or errs; nothing panics.
func FuzzParseAndNormalize(f *testing.F) {
	f.Add(NewEvent("evt_1", "checkout.session.completed", time.Now(), CheckoutSession("cs_1", "cus_1", "a@example.com", "paid", 100, map[string]string{"plan_code": "premium", "seats": "3"})))
	f.Add(NewEvent("evt_2", "invoice.paid", time.Now(), Invoice("in_1", "cus_1", "sub-1", time.Now(), 100, true)))
	f.Add([]byte(`{"id":"evt_3","type":"checkout.session.completed","data":{"object":{"metadata":{"seats":"x","auto_renew":"maybe"}}}}`))
	f.Add([]byte(`{"id":"evt_4","type":"invoice.paid","data":{"object":{"metadata":{"fulfillment_subscription_id":"s","term_start":"2026-99-99"}}}}`))
	f.Add([]byte(`{"data":{"object":null}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvent(body)
		if err != nil {
			return
		}
		_, _ = Normalize(ev)
	})
}
