package cloudevent

import "testing"

// FuzzParsePush: any push body gives an event or an error, never a panic,
// and an event it gives is valid.
func FuzzParsePush(f *testing.F) {
	f.Add([]byte(`{"message":{"data":"e30=","attributes":{"ce-id":"1","ce-source":"//s","ce-type":"t","ce-specversion":"1.0"},"messageId":"m1"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}`))
	f.Add([]byte(`{"message":{"data":"e30=","attributes":{"ce-id":"1","ce-time":"yesterday"}}}`))
	f.Add([]byte(`{"message":{"messageId":"m2","publishTime":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"message":null}`))
	f.Add([]byte(`{"message":{"data":"!!notbase64"}}`))
	f.Add([]byte(`{"deliveryAttempt":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, _, err := ParsePushDelivery(body)
		if err != nil {
			return
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("ParsePush gave an invalid event: %v", verr)
		}
		if _, err := Unwrap(e); err != nil {
			return
		}
	})
}
