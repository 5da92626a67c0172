package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"fulfillment/infra/localstack"
	"fulfillment/shared/testsupport/emulator"
)

// Sizes are how much each measurement does: Full for make bench, a few
// events each for the smoke run in make test.
type Sizes struct {
	HandlerEvents    int   // go test -benchtime for BenchmarkWebhook
	Warmup           int   // events at concurrency 8 before the levels
	LevelEvents      int   // distinct events per concurrency level
	Levels           []int // concurrencies
	LatencyOrders    int   // purchases one at a time (and as many floors)
	Orders           int   // purchases for the throughput figure
	OrderConcurrency int
	RequestOrders    int  // purchases whose calls to the emulators are counted (0: none)
	Images           bool // start every shipped image under podman
	// Rounds is how many times the webhook's levels and the pipeline's
	// throughput run, one round after the other (0: once); see rounds.go.
	Rounds int
}

// Full is what make bench measures: the mix the targets are stated for.
var Full = Sizes{HandlerEvents: 5000, Warmup: 200, LevelEvents: 500, Levels: []int{1, 8, 32},
	LatencyOrders: 100, Orders: 1000, OrderConcurrency: 8, RequestOrders: 200, Images: true, Rounds: 3}

// Report is every figure of one run.
type Report struct {
	Handler []HandlerBench
	Webhook []WebhookLevel // every round's levels, in the order run
	// WebhookCPUs is the CPU the webhook process had (WebhookProcess.CPUs).
	WebhookCPUs string
	Latency     Latency
	Throughput  Throughput   // the round of median orders per second
	Throughputs []Throughput // every round, in the order run
	// PipelineSpans is how many spans the pipeline's functions exported
	// (pipelineTelemetry: none).
	PipelineSpans int
	Requests      Requests
	Images        []ImageFigures
}

// Run takes every measurement and prints the table to w as it goes.
func Run(ctx context.Context, root string, sz Sizes, w io.Writer) (Report, error) {
	var r Report
	var err error
	fmt.Fprintln(w, "bench: the webhook handler's go test benchmark...")
	if r.Handler, err = RunHandlerBench(ctx, root, sz.HandlerEvents); err != nil {
		return r, err
	}
	fmt.Fprintln(w, "bench: the webhook process under load...")
	if r.Webhook, r.WebhookCPUs, err = driveWebhook(ctx, root, sz); err != nil {
		return r, err
	}
	fmt.Fprintln(w, "bench: the pipeline (every function on the local stack)...")
	if err = measurePipeline(ctx, root, sz, &r); err != nil {
		return r, err
	}
	if sz.RequestOrders > 0 {
		fmt.Fprintln(w, "bench: the calls each function makes to the emulators per order...")
		if r.Requests, err = MeasureRequests(ctx, root, sz.RequestOrders, sz.OrderConcurrency); err != nil {
			return r, err
		}
	}
	if sz.Images {
		fmt.Fprintln(w, "bench: the shipped images under podman...")
		if r.Images, err = MeasureImages(ctx, root); err != nil {
			return r, err
		}
	}
	r.Print(w)
	return r, nil
}

func driveWebhook(ctx context.Context, root string, sz Sizes) ([]WebhookLevel, string, error) {
	dir, err := os.MkdirTemp("", "bench")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	hook, err := StartWebhook(ctx, root, dir)
	if err != nil {
		return nil, "", err
	}
	defer hook.Stop()
	run := fmt.Sprintf("w%d", time.Now().UnixNano())
	if _, err := hook.Drive(ctx, run+"warm", sz.Warmup, 8); err != nil {
		return nil, hook.CPUs, err
	}
	var levels []WebhookLevel
	for round := range max(sz.Rounds, 1) {
		for _, c := range sz.Levels {
			l, err := hook.Drive(ctx, fmt.Sprintf("%sr%dc%d", run, round, c), sz.LevelEvents, c)
			if err != nil {
				return levels, hook.CPUs, err
			}
			levels = append(levels, l)
		}
	}
	return levels, hook.CPUs, nil
}

// pipelineTelemetry is how the pipeline's functions export telemetry: not
// at all, as terraform deploys them unless an OTLP endpoint is given, and as
// the webhook process runs above. make run's stack exports every span to a
// receiver of its own (so fulfillctl trace can show a purchase), which took
// about 2 ms of CPU per order here, an eighth of the pipeline's
// (docs/testing.md, Bench); with an endpoint, production's spans go to a
// collector off the functions' cores.
var pipelineTelemetry = map[string]map[string]string{"*": {"OTEL_TRACES_EXPORTER": "none"}}

// pipelineTelemetryRow says so in the table.
const pipelineTelemetryRow = "off in every function, as terraform deploys them by default (make run exports every span)"

func measurePipeline(ctx context.Context, root string, sz Sizes, r *Report) error {
	s, err := localstack.Start(ctx, localstack.Options{Project: emulator.NewProject("bench"), Root: root, Env: pipelineTelemetry})
	if err != nil {
		return err
	}
	defer s.Stop()
	run := fmt.Sprintf("p%d", time.Now().UnixNano())
	// A few purchases first, so every function has its connections open.
	if _, err := MeasureLatency(ctx, s, run+"warm", 3); err != nil {
		return err
	}
	if r.Latency, err = MeasureLatency(ctx, s, run+"lat", sz.LatencyOrders); err != nil {
		return err
	}
	for round := range max(sz.Rounds, 1) {
		t, err := MeasureThroughput(ctx, s, fmt.Sprintf("%stput%d", run, round), sz.Orders, sz.OrderConcurrency)
		if err != nil {
			return err
		}
		r.Throughputs = append(r.Throughputs, t)
	}
	r.Throughput = medianRound(r.Throughputs)
	r.PipelineSpans = s.Traces.Spans()
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// Print writes the table: figure, value, target (and the closest peer's
// figure where the issue measured one), and the machine's load.
func (r Report) Print(w io.Writer) {
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "figure\tmeasured\ttarget (peer)\tmachine")
	for _, h := range r.Handler {
		fmt.Fprintf(t, "webhook handler on %s: time per event\t%s\t\t%s\n", h.Name, us(h.PerOp), h.Load)
		fmt.Fprintf(t, "webhook handler on %s: allocations per event\t%.0f allocs, %.1f KiB\t\t\n", h.Name, h.AllocsPerOp, h.BytesPerOp/1024)
		fmt.Fprintf(t, "webhook handler on %s: Firestore commits per accepted event\t%.2f\t1\t\n", h.Name, h.CommitsPerEvent)
		fmt.Fprintf(t, "webhook handler on %s: Pub/Sub publishes per accepted event\t%.2f\t1 per handled type (4 of the 5 in the mix)\t\n", h.Name, h.PublishesPerEvent)
	}
	if len(r.Webhook) > 0 {
		fmt.Fprintf(t, "webhook process: CPUs\t%s\t\t\n", r.WebhookCPUs)
	}
	r.printWebhook(t)
	if len(r.Latency.Purchases) > 0 || r.Throughput.Orders > 0 {
		fmt.Fprintf(t, "purchase and pipeline stack: trace export\t%s\t\t\n", pipelineTelemetryRow)
	}
	if n := len(r.Latency.Purchases); n > 0 {
		l := r.Latency
		for _, v := range []struct {
			what string
			of   func([]localstack.TwoHops) []time.Duration
		}{{"", Totals}, {", the emulator's push waits taken out", Own}} {
			p, f := v.of(l.Purchases), v.of(l.Floor)
			fp50 := Percentile(f, 50)
			fmt.Fprintf(t, "purchase to provisioned, one at a time%s: p50 / p99 (%d)\t%s / %s\t<= 1.2x floor p50 (%s)\t%s\n",
				v.what, n, ms(Percentile(p, 50)), ms(Percentile(p, 99)), ms(fp50*12/10), l.LoadPurchases)
			fmt.Fprintf(t, "two-hop floor of the local transport%s: p50 / p99 (%d)\t%s / %s\t\t%s\n",
				v.what, len(f), ms(fp50), ms(Percentile(f, 99)), l.LoadFloor)
		}
		fmt.Fprintf(t, "the emulator's push waits, purchase / floor: p50 (p99)\t%s (%s) / %s (%s)\t\t\n",
			ms(Percentile(Waits(l.Purchases), 50)), ms(Percentile(Waits(l.Purchases), 99)), ms(Percentile(Waits(l.Floor), 50)), ms(Percentile(Waits(l.Floor), 99)))
		p := OwnWithWaitsOf(l.Purchases, l.Floor)
		fp50 := Percentile(Totals(l.Floor), 50)
		fmt.Fprintf(t, "purchase to provisioned, one at a time, with the floor's push waits: p50 / p99 (%d)\t%s / %s (%.2fx the floor)\t<= 1.2x floor p50 (%s)\t\n",
			len(p), ms(Percentile(p, 50)), ms(Percentile(p, 99)), float64(Percentile(p, 50))/float64(fp50), ms(fp50*12/10))
	}
	if r.Throughput.Orders > 0 {
		var rates []float64
		var loads []Load
		for _, tp := range r.Throughputs {
			rates, loads = append(rates, tp.OrdersPerSecond()), append(loads, tp.Load)
		}
		fmt.Fprintf(t, "pipeline: %d orders at concurrency %d, all provisioned%s\t%s (median round %.1f s)\t>= 150 orders/s\t%s\n",
			r.Throughput.Orders, r.Throughput.Concurrency, roundsOf(len(rates)), spread("%.0f orders/s", rates), r.Throughput.Elapsed.Seconds(), loadSpan(loads))
		var total, processes time.Duration
		for _, p := range r.Throughput.CPU {
			total += p.PerOrder
			if !p.Kernel() {
				processes += p.PerOrder
			}
		}
		allow := func(cpu time.Duration) float64 {
			return float64(runtime.NumCPU()) * float64(time.Second) / float64(max(cpu, 1))
		}
		fmt.Fprintf(t, "pipeline: CPU per order, every process (median round)\t%s (the cores allow %.0f orders/s)\t<= %s for 150/s on %d cores\t\n",
			ms(total), allow(total), ms(time.Duration(runtime.NumCPU())*time.Second/150), runtime.NumCPU())
		fmt.Fprintf(t, "pipeline: CPU per order, the stack's processes (kernel threads left out)\t%s (the cores would allow %.0f orders/s)\t\t\n",
			ms(processes), allow(processes))
		for _, p := range r.Throughput.CPU {
			fmt.Fprintf(t, "pipeline: CPU per order, %s\t%s\t\t\n", p.Name, ms(p.PerOrder))
		}
	}
	if r.Requests.Orders > 0 {
		fs, ps := r.Requests.PerOrder()
		fmt.Fprintf(t, "requests per order (%d orders at concurrency %d, counted by proxies): Firestore / Pub/Sub\t%.1f / %.1f\t\t\n", r.Requests.Orders, r.Throughput.Concurrency, fs, ps)
		for _, f := range r.Requests.Functions {
			fmt.Fprintf(t, "requests per order, %s: Firestore / Pub/Sub\t%s / %s\t\t\n", f.Name, describe(f.Firestore, r.Requests.Orders), describe(f.PubSub, r.Requests.Orders))
		}
	}
	for _, im := range r.Images {
		fmt.Fprintf(t, "image %s: start via podman's API (via podman start; binary's exec) to first handled request / RSS / SIGTERM to exit\t%s (%s; %s) / %.1f MiB / %s\t<= 100 ms / <= 30 MiB / < 10 s\t%s\n",
			im.Name, ms(im.Startup), ms(im.FromCLI), ms(im.FromExec), float64(im.RSSBytes)/(1<<20), ms(im.Stop), im.Load)
	}
	t.Flush()
}

// printWebhook writes the webhook process's lines: per concurrency, each
// figure's median over the rounds with its range.
func (r Report) printWebhook(t io.Writer) {
	peer := map[int]string{1: "(80/s, p50 11.3 ms)", 8: ">= 850/s, p99 < 100 ms (166-172/s, p99 90-111 ms)", 32: ">= 1000/s (201-205/s, p99 417-561 ms)"}
	msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	order, at := byConcurrency(r.Webhook)
	for _, c := range order {
		ls := at[c]
		var loads []Load
		var handled, published, publishedEvents, events, failed, deliveries int
		for _, l := range ls {
			loads = append(loads, l.Load)
			handled, published, publishedEvents = handled+l.Handled, published+l.Published, publishedEvents+l.PublishedEvents
			events, failed, deliveries = events+l.Events, failed+l.Failed, deliveries+l.Deliveries
		}
		what := fmt.Sprintf("webhook process, concurrency %d", c)
		fmt.Fprintf(t, "%s: deliveries/s; distinct events/s%s\t%s; %s\t%s\t%s\n", what, roundsOf(len(ls)),
			spread("%.0f", each(ls, WebhookLevel.DeliveriesPerSecond)), spread("%.0f", each(ls, WebhookLevel.EventsPerSecond)), peer[c], loadSpan(loads))
		fmt.Fprintf(t, "%s: p50 / p99\t%s / %s\t\t\n", what,
			spread("%.1f ms", each(ls, func(l WebhookLevel) float64 { return msOf(l.P50) })), spread("%.1f ms", each(ls, func(l WebhookLevel) float64 { return msOf(l.P99) })))
		fmt.Fprintf(t, "%s: CPU per delivery (own process)\t%s\t<= 250 µs (4.2-7.0 ms)\t\n", what,
			spread("%.0f µs", each(ls, func(l WebhookLevel) float64 { return float64(l.CPUPerDelivery()) / float64(time.Microsecond) })))
		fmt.Fprintf(t, "%s: Pub/Sub publishes per distinct event (events published of those handled)\t%.2f (%d of %d)\t%.2f: each handled event once\t\n",
			what, float64(published)/float64(max(events, 1)), publishedEvents, handled, float64(handled)/float64(max(events, 1)))
		if failed > 0 {
			fmt.Fprintf(t, "%s: non-200 answers\t%d of %d\t0\t\n", what, failed, deliveries)
		}
	}
}

// roundsOf names how many rounds a figure is the median of.
func roundsOf(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(", median of %d rounds (range)", n)
}
