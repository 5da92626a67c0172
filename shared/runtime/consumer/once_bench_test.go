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

// BenchmarkOnceSerialized is one first delivery of serialized work with an
// outside call (a provisioning call's shape: lease, version, effect, one
// state write), each on a subscription of its own, on the adapter
// FULFILLMENT_TEST_STORE names: its time and the reads and commits it makes.
func BenchmarkOnceSerialized(b *testing.B) {
	p, _, db := countedProcessor(b, journal(b).DB)
	b.ResetTimer()
	for i := range b.N {
		in := input(b, fmt.Sprintf("evt-bench-serialized-%d-%d", b.N, i))
		w := consumer.AfterEffect(func(context.Context) error { return nil },
			func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
				return nil, tx.Set("consumer_bench_state", in.ID(), map[string]any{"done": true})
			})
		w.Serialize, w.Version = in.ID(), 1
		if err := p.Once(context.Background(), in, w); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(db.Reads())/float64(b.N), "reads/op")
	b.ReportMetric(float64(db.Commits())/float64(b.N), "commits/op")
}
