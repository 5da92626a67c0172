package renewal

import (
	"context"
	"fmt"
	"fulfillment/shared/adapters/firestore"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
)

// BenchmarkRenewalFanOut seeds RENEWAL_BENCH_N (default 2000) subscriptions
// due for review in the Firestore emulator, then times one tick's whole
// fan-out: paged queries and one renewal-due event per subscription
// published to the Pub/Sub emulator, following the hand-over page events as
// renewal would receive them. `make bench-renewal N=100000` runs it at scale.
func BenchmarkRenewalFanOut(b *testing.B) {
	n := 2000
	if v := os.Getenv("RENEWAL_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	project := emulator.NewProject("bench")
	st, err := firestore.OpenStore(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	defer ps.Close()
	if _, err := ps.Raw().TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + catalog.TopicRenewalTicks}); err != nil {
		b.Fatal(err)
	}
	seeded := time.Now()
	seedDue(b, st, n)
	fmt.Fprintf(os.Stderr, "seeded %d due subscriptions in %s\n", n, time.Since(seeded).Round(time.Millisecond))

	batch := ps.Batched()
	defer batch.Close()
	pub := &pageCatcher{Publisher: batch}
	f := New(Deps{Store: st, Publisher: pub, Policy: subscription.DefaultPolicy(), Logger: slog.New(slog.DiscardHandler),
		Clock: &testClock{t: t0}})
	b.ResetTimer()
	for range b.N {
		pub.reset()
		start := time.Now()
		if err := f.FanOutOnTick(ctx, tickEvent(b, "bench-tick")); err != nil {
			b.Fatal(err)
		}
		deliveries := 1
		for page, ok := pub.next(); ok; page, ok = pub.next() {
			if err := f.FanOutOnPage(ctx, page); err != nil {
				b.Fatal(err)
			}
			deliveries++
		}
		took := time.Since(start)
		if pub.due != n {
			b.Fatalf("fanned out %d renewal-due events, want %d", pub.due, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		b.ReportMetric(float64(deliveries), "deliveries")
		fmt.Printf("renewal fan-out: %d due subscriptions -> %d renewal-due events in %s (%.0f events/s, %d deliveries of up to %d pages of %d)\n",
			n, pub.due, took.Round(time.Millisecond), float64(n)/took.Seconds(), deliveries, f.d.PagesPerRun, f.d.PageSize)
	}
}

// seedDue writes n due subscriptions with Firestore's BulkWriter: only the
// fields a fan-out reads (review time, version, status), since the
// emulator indexes every field and whole documents would take it most of
// an hour to write at 100,000.
func seedDue(b *testing.B, st *store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	bw := st.DB.(*firestore.DB).Client.BulkWriter(ctx)
	for i := range n {
		id := fmt.Sprintf("bench-%07d", i)
		doc := map[string]any{"id": id, "status": "active", "version": 1, "next_review_at": t0.Add(-time.Duration(i) * time.Second)}
		if _, err := bw.Set(st.DB.(*firestore.DB).Client.Collection(store.Subscriptions).Doc(id), doc); err != nil {
			b.Fatal(err)
		}
	}
	bw.End()
}

// pageCatcher publishes for real and keeps the fan-out's hand-over pages,
// which the benchmark delivers in turn as the push subscription would.
type pageCatcher struct {
	pubsub.Publisher
	mu    sync.Mutex
	pages []event.Event
	due   int
}

func (p *pageCatcher) Publish(ctx context.Context, topic string, events ...event.Event) error {
	if err := p.Publisher.Publish(ctx, topic, events...); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range events {
		switch e.Type() {
		case catalog.RenewalFanOutPage:
			p.pages = append(p.pages, e)
		case catalog.RenewalDue:
			p.due++
		}
	}
	return nil
}

func (p *pageCatcher) next() (event.Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pages) == 0 {
		return event.Event{}, false
	}
	e := p.pages[0]
	p.pages = p.pages[1:]
	return e, true
}

func (p *pageCatcher) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages, p.due = nil, 0
}
