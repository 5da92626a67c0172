package telemetry_test

import (
	"context"
	"errors"
	"fulfillment/shared/adapters/store"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/telemetry"
	"fulfillment/shared/testsupport/storetest"
)

// reader collects what the instruments recorded, on demand.
var reader = sdkmetric.NewManualReader()

func TestMain(m *testing.M) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	storetest.RunTests(m)
}

// TestConsumerCountsHandledFailedAndDeadLettered runs deliveries through the
// real consumer machinery on the test store and reads the metrics.
func TestConsumerCountsHandledFailedAndDeadLettered(t *testing.T) {
	const fn = "metrics-consumer"
	pub := &pubsub.Recorder{}
	p := &consumer.Processor{
		Name: fn, Journal: storetest.Open(t, "telemetry"), Publisher: pub, DeadLetterTopic: "dead-letters-test",
		Logger: slog.New(slog.DiscardHandler),
	}
	p.Routes = map[string]consumer.HandlerFunc{
		"test.ok.v1": func(ctx context.Context, in event.Event) error {
			return p.Once(ctx, in, consumer.Work{Apply: func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil }})
		},
		"test.flaky.v1": func(context.Context, event.Event) error { return errors.New("firestore unavailable") },
		"test.bad.v1":   func(context.Context, event.Event) error { return failure.Permanentf("bad payload") },
	}
	deliveries := []struct {
		typ     string
		wantErr bool
	}{
		{"test.ok.v1", false}, {"test.ok.v1", false}, {"test.flaky.v1", true}, {"test.bad.v1", false}, {"test.other.v1", false},
	}
	for i, d := range deliveries {
		e, err := cloudevent.New(context.Background(), d.typ+string(rune('a'+i)), "//test", d.typ, "sub-1", map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Handle(context.Background(), e); (err != nil) != d.wantErr {
			t.Fatalf("delivery %d (%s): err %v, want error %v", i, d.typ, err, d.wantErr)
		}
	}
	if n := len(pub.Events["dead-letters-test"]); n != 1 {
		t.Fatalf("%d events on the dead-letter topic, want 1", n)
	}

	rm := collect(t)
	fnAttr := telemetry.AttrFunction.String(fn)
	typ := telemetry.AttrEventType.String
	cases := []struct {
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{telemetry.MetricEventsHandled, []attribute.KeyValue{fnAttr, typ("test.ok.v1")}, 2},
		{telemetry.MetricEventsHandled, []attribute.KeyValue{fnAttr, typ("test.other.v1")}, 0}, // ignored, not handled
		{telemetry.MetricEventsFailed, []attribute.KeyValue{fnAttr, typ("test.flaky.v1"), telemetry.AttrErrorType.String("transient")}, 1},
		{telemetry.MetricEventsFailed, []attribute.KeyValue{fnAttr, typ("test.bad.v1"), telemetry.AttrErrorType.String("permanent")}, 1},
		{telemetry.MetricDeadLetters, []attribute.KeyValue{fnAttr, typ("test.bad.v1")}, 1},
	}
	for _, c := range cases {
		if got := sum(rm, c.metric, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
	if got := histogramCount(rm, telemetry.MetricEventDuration, fnAttr); got != 4 {
		t.Errorf("%s count = %d, want 4 (every delivery but the ignored one)", telemetry.MetricEventDuration, got)
	}
}

func TestOutsideCallsAndPaymentFailuresAreCounted(t *testing.T) {
	ctx := context.Background()
	telemetry.CallDone(ctx, "gitlab-test", "provision", nil)
	telemetry.CallDone(ctx, "gitlab-test", "provision", errors.New("503"))
	telemetry.CallDone(ctx, "gitlab-test", "provision", failure.Permanentf("404"))
	telemetry.PaymentFailed(ctx, "alerting-test")
	telemetry.PaymentFailed(ctx, "alerting-test")

	rm := collect(t)
	peer := telemetry.AttrPeer.String("gitlab-test")
	for outcome, want := range map[string]int64{"ok": 1, "transient": 1, "permanent": 1} {
		if got := sum(rm, telemetry.MetricOutboundCalls, peer, telemetry.AttrOutcome.String(outcome)); got != want {
			t.Errorf("gitlab calls %s = %d, want %d", outcome, got, want)
		}
	}
	if got := sum(rm, telemetry.MetricPaymentFailures, telemetry.AttrFunction.String("alerting-test")); got != 2 {
		t.Errorf("payment failures = %d, want 2", got)
	}
}

func collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// sum adds the points of counter name whose attributes include attrs.
func sum(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	var total int64
	for _, m := range find(rm, name) {
		if s, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, dp := range s.DataPoints {
				if has(dp.Attributes, attrs) {
					total += dp.Value
				}
			}
		}
	}
	return total
}

func histogramCount(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) uint64 {
	var total uint64
	for _, m := range find(rm, name) {
		if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
			for _, dp := range h.DataPoints {
				if has(dp.Attributes, attrs) {
					total += dp.Count
				}
			}
		}
	}
	return total
}

func find(rm metricdata.ResourceMetrics, name string) []metricdata.Metrics {
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				out = append(out, m)
			}
		}
	}
	return out
}

func has(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}
