package checkoutwebhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/testsupport/counting"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/loadgen"
	"fulfillment/shared/testsupport/storetest"
)

// BenchmarkWebhook is the webhook's cost per delivery on the benchmark mix
// (five event types, about 5 KiB each, every event delivered once), on the
// in-memory adapter and publisher (the handler's own CPU and allocations)
// and on the emulators. Besides ns/op and allocs/op it reports Firestore
// commits and Pub/Sub messages per accepted event.
func BenchmarkWebhook(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		st := storetest.Open(b, "bench")
		benchWebhook(b, st, &pubsub.Recorder{})
	})
	b.Run("emulator", func(b *testing.B) {
		if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
			b.Skip("needs the emulators: run under infra/cmd/withemulators (make bench does)")
		}
		ctx := context.Background()
		project := emulator.NewProject("benchhook")
		st, err := firestore.OpenStore(ctx, project)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		ps, err := pubsub.NewClient(ctx, project)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ps.Close() })
		topic := "projects/" + project + "/topics/" + catalog.TopicProviderEvents
		if _, err := ps.Raw().TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
			b.Fatal(err)
		}
		benchWebhook(b, st, ps)
	})
}

func benchWebhook(b *testing.B, st *store.Store, p pubsub.Publisher) {
	db := counting.NewDB(st.DB)
	pub := counting.NewPublisher(p)
	fn := New(Deps{Store: store.New(db), Publisher: pub, Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)})
	run := fmt.Sprintf("b%d", b.N)
	events := make([]loadgen.Delivery, b.N)
	for i := range events {
		events[i] = loadgen.Event(run, i, secret)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := events[i].Request("/")
		w := httptest.NewRecorder()
		fn.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("event %d answered %d: %s", i, w.Code, w.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(db.Commits())/float64(b.N), "commits/event")
	b.ReportMetric(float64(pub.Messages())/float64(b.N), "publishes/event")
}
