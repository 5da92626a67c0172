package stripe_test

import (
	"testing"

	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/testsupport/loadgen"
)

// BenchmarkParseAndNormalize is the webhook's decoding of one event of the
// benchmark mix: the envelope, then the object of a handled type.
func BenchmarkParseAndNormalize(b *testing.B) {
	var events [][]byte
	for i := range 50 {
		events = append(events, loadgen.Event("dec", i, "whsec").Payload)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev, err := stripe.ParseEvent(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := stripe.InternalType(ev.Type); ok {
			if _, err := stripe.Normalize(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
}
