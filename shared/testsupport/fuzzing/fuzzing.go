// Package fuzzing drives a function's CloudEvent handler with arbitrary
// payloads under each event type it routes (go test -fuzz): whatever the
// bytes, the function must answer (acknowledge, dead-letter or ask for a
// retry), never panic.
package fuzzing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Seeds are payloads every function's corpus starts from: empty, not JSON,
// wrong JSON types, and shapes close to the real ones.
var Seeds = [][]byte{
	nil,
	[]byte(`{}`),
	[]byte(`null`),
	[]byte(`[]`),
	[]byte(`"text"`),
	[]byte(`{"id":7,"version":"x","status":{},"order":[]}`),
	[]byte(`{"id":"sub-1","version":1,"status":"active","order":{"plan_code":"premium","seats":-5,"deployment":"saas"},"customer":{"provider_customer_id":"cus_1"}}`),
	[]byte(`{"id":"sub-1","version":9223372036854775807,"status":"canceled","order":{"plan_code":"","seats":0,"deployment":"self_managed"}}`),
	[]byte(`{"subscription_id":"","provider_event_id":"evt_1","order":{"plan_code":"premium","seats":1e99}}`),
	[]byte(`{"subscription_id":"sub-1","occurred_at":"not a time","term_start":"2026-13-45T00:00:00Z"}`),
	[]byte("\xff\xfe\x00{"),
}

// Events fuzzes handle with arbitrary data under each of types (and one
// type no route knows).
func Events(f *testing.F, types []string, handle func(context.Context, event.Event) error) {
	types = append(types, "fulfillment.fuzz.unknown.v1")
	for i, s := range Seeds {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		e := event.New()
		sum := sha256.Sum256(append([]byte{which}, data...))
		e.SetID("fuzz-" + hex.EncodeToString(sum[:8]))
		e.SetSource("//fulfillment/fuzz")
		e.SetType(types[int(which)%len(types)])
		e.SetSubject("sub-fuzz")
		e.SetTime(time.Now())
		e.SetDataContentType(event.ApplicationJSON)
		e.DataEncoded = data
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = handle(ctx, e) // any outcome but a panic is an answer
	})
}
