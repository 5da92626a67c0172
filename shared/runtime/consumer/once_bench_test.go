package consumer_test

import (
	"context"
	"fmt"
	"testing"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/consumer"
)

// BenchmarkOncePlain is one first delivery of work with no outside call
// and no lease (a payment-result step's shape) with one state write, on the
// adapter FULFILLMENT_TEST_STORE names: its time and the document reads it
// makes.
func BenchmarkOncePlain(b *testing.B) {
	p, _, db := countedProcessor(b, journal(b).DB)
	b.ResetTimer()
	for i := range b.N {
		in := input(b, fmt.Sprintf("evt-bench-%d-%d", b.N, i))
		err := p.Once(context.Background(), in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
			return nil, tx.Set("consumer_bench_state", in.ID(), map[string]any{"done": true})
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(db.Reads())/float64(b.N), "reads/op")
}
