package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"fulfillment/infra/bench"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/localproc"
)

func TestMain(m *testing.M) { emulator.RunTests(m) }

// TestBenchSmoke runs every measurement of make bench at a few events each:
// the benchmark keeps working, and the figures it reports hold what the
// rules promise (one commit per accepted event, every delivery answered
// 200, every order provisioned).
func TestBenchSmoke(t *testing.T) {
	root, err := localproc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	r, err := bench.Run(ctx, root, bench.Sizes{HandlerEvents: 50, Warmup: 10, LevelEvents: 20, Levels: []int{1, 8},
		LatencyOrders: 3, Orders: 10, OrderConcurrency: 4, RequestOrders: 5, Images: false, Rounds: 2}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Handler) != 2 {
		t.Fatalf("handler benchmark lines = %+v, want memory and emulator", r.Handler)
	}
	for _, h := range r.Handler {
		if h.CommitsPerEvent != 1 || h.PublishesPerEvent <= 0 || h.PerOp <= 0 || h.AllocsPerOp <= 0 {
			t.Errorf("handler on %s: %+v, want 1 commit per event and some publishes", h.Name, h)
		}
	}
	if len(r.Webhook) != 4 || len(r.Throughputs) != 2 {
		t.Fatalf("%d webhook levels and %d pipeline rounds, want 2 rounds of each (levels 1 and 8)", len(r.Webhook), len(r.Throughputs))
	}
	for _, l := range r.Webhook {
		if l.Failed != 0 || l.Deliveries < l.Events || l.P50 <= 0 || l.CPU <= 0 {
			t.Errorf("webhook at concurrency %d: %+v", l.Concurrency, l)
		}
		if l.Handled == 0 || l.PublishedEvents != l.Handled || l.Published < l.PublishedEvents {
			t.Errorf("webhook at concurrency %d: %d messages carrying %d events published, want each of the %d handled events", l.Concurrency, l.Published, l.PublishedEvents, l.Handled)
		}
	}
	if len(r.Throughput.CPU) == 0 || r.Throughput.CPU[0].PerOrder <= 0 {
		t.Errorf("pipeline CPU per order by process = %+v, want some", r.Throughput.CPU)
	}
	if r.PipelineSpans != 0 {
		t.Errorf("the pipeline's functions exported %d spans, want none (as deployed by default)", r.PipelineSpans)
	}
	if len(r.Latency.Purchases) != 3 || len(r.Latency.Floor) != 3 || r.Throughput.Orders != 10 || r.Throughput.Elapsed <= 0 {
		t.Errorf("pipeline figures = %+v %+v", r.Latency, r.Throughput)
	}
	// Each of those went through two pushes whose waits in the emulator
	// were noted, and took some time of its own beside them.
	for _, h := range append(r.Latency.Purchases, r.Latency.Floor...) {
		if h.EmulatorWait <= 0 || h.Own() <= 0 {
			t.Errorf("two hops %+v, want both the emulator's waits and time of their own", h)
		}
	}
	// The webhook writes and publishes each order's event at most once,
	// grouped with others' when they meet; the consumers behind it read
	// and write each order under their leases.
	calls := map[string]bench.FunctionRequests{}
	for _, f := range r.Requests.Functions {
		calls[f.Name] = f
	}
	orders := int64(r.Requests.Orders)
	if w := calls["checkout-webhook"]; bench.Total(w.Firestore) < 1 || bench.Total(w.Firestore) > orders || bench.Total(w.PubSub) < 1 || bench.Total(w.PubSub) > orders {
		t.Errorf("checkout-webhook calls for %d orders = %+v, want 1 to %d Firestore writes and Pub/Sub publishes", orders, w, orders)
	}
	for _, fn := range []string{"payment-result", "provisioning"} {
		if f := calls[fn]; bench.Total(f.Firestore) < orders || bench.Total(f.PubSub) < 1 {
			t.Errorf("%s calls for %d orders = %+v, want Firestore calls for each order and a publish", fn, orders, f)
		}
	}
	for _, want := range []string{"webhook process: CPUs", "concurrency 8", "two-hop floor", "push waits taken out", "with the floor's push waits", "orders/s", "requests per order", "median of 2 rounds"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table has no %q line", want)
		}
	}
}
