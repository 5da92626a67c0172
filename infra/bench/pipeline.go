package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/testsupport/testdouble"
)

// Latency is purchase-to-provisioned against the transport's floor, both
// measured one message at a time in the same stack.
type Latency struct {
	Purchases     []localstack.TwoHops // webhook POST sent -> GitLab's provisioning call received
	Floor         []localstack.TwoHops // two hops of the bare transport (localstack.HopFloor)
	LoadPurchases Load
	LoadFloor     Load
}

// Totals is each of hs's whole time.
func Totals(hs []localstack.TwoHops) []time.Duration {
	return mapHops(hs, func(h localstack.TwoHops) time.Duration { return h.Total })
}

// Own is each of hs's time beside the emulator's push waits.
func Own(hs []localstack.TwoHops) []time.Duration { return mapHops(hs, localstack.TwoHops.Own) }

// Waits is each of hs's emulator push waits.
func Waits(hs []localstack.TwoHops) []time.Duration {
	return mapHops(hs, func(h localstack.TwoHops) time.Duration { return h.EmulatorWait })
}

// OwnWithWaitsOf is each of hs's own time plus the emulator's push waits of
// the same send in ws (the i-th of each, sent after the same pause): hs as
// if its messages had found the emulator's idle push loops as ws's did.
// The second hop's wait hangs on how the two subscriptions' loops lie to
// each other, fixed per pair and drawn anew for each fresh pair, so the
// stack's pair and the floor's draw it apart: 55-148 ms at p50 for the
// floor against 65-124 for the purchase in nine runs of 2026-12-07. GCP's
// push has no idle loop; this line compares what is ours.
func OwnWithWaitsOf(hs, ws []localstack.TwoHops) []time.Duration {
	out := make([]time.Duration, min(len(hs), len(ws)))
	for i := range out {
		out[i] = hs[i].Own() + ws[i].EmulatorWait
	}
	return out
}

func mapHops(hs []localstack.TwoHops, f func(localstack.TwoHops) time.Duration) []time.Duration {
	out := make([]time.Duration, len(hs))
	for i, h := range hs {
		out[i] = f(h)
	}
	return out
}

// Throughput is orders per second, all of them provisioned.
type Throughput struct {
	Orders      int
	Concurrency int
	Elapsed     time.Duration // first webhook sent -> last provisioning call
	Load        Load
	// CPU is each process's CPU per order over the run: what bounds the
	// pipeline on a machine the emulators share.
	CPU []ProcessShare
}

// OrdersPerSecond is the pipeline's rate end to end.
func (t Throughput) OrdersPerSecond() float64 { return float64(t.Orders) / t.Elapsed.Seconds() }

func newPurchase(run string, i int) demo.Purchase {
	id := fmt.Sprintf("%s_%06d", run, i)
	return demo.Purchase{
		SessionID: "cs_" + id, CustomerID: "cus_" + id, Email: "buyer@example.com",
		Plan: "premium", Seats: 10, NamespaceID: "ns-" + id, AutoRenew: true, Paid: true,
	}
}

// provisionPath is GitLab's provisioning call for a namespace.
func provisionPath(namespaceID string) string {
	return "/api/v4/internal/gitlab_subscriptions/namespaces/" + namespaceID + "/provision"
}

// provisions follows GitLab's provisioning calls as they arrive, reading
// only the double's calls it has not seen: the bench polls it while it
// measures, and copying every call each time cost the bench more CPU than
// some of the functions under test.
type provisions struct {
	gitlab *testdouble.GitLab
	seen   int                  // calls of the double read so far
	at     map[string]time.Time // call path -> its first arrival
	count  int                  // provisioning calls since the start
	last   time.Time            // the latest of them
}

// newProvisions follows the calls GitLab receives from now on.
func newProvisions(g *testdouble.GitLab) *provisions {
	return &provisions{gitlab: g, seen: len(g.Calls()), at: map[string]time.Time{}}
}

func (p *provisions) update() {
	for _, c := range p.gitlab.CallsFrom(p.seen) {
		p.seen++
		if c.Method != http.MethodPost {
			continue
		}
		p.count++
		p.last = later(p.last, c.Time)
		if _, ok := p.at[c.Path]; !ok {
			p.at[c.Path] = c.Time
		}
	}
}

// of is when namespaceID was first provisioned.
func (p *provisions) of(namespaceID string) (time.Time, bool) {
	p.update()
	t, ok := p.at[provisionPath(namespaceID)]
	return t, ok
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// MeasureLatency buys n subscriptions one after the other and times each to
// its provisioning call (its two hops: the checkout event pushed to
// payment-result, the activation pushed to provisioning), then measures n
// two-hop floors, each send after the same pauses (localstack.PauseBefore).
func MeasureLatency(ctx context.Context, s *localstack.Stack, run string, n int) (Latency, error) {
	var out Latency
	seen := newProvisions(s.GitLab)
	meter := StartMeter()
	for i := range n {
		time.Sleep(localstack.PauseBefore(i))
		p := newPurchase(run, i)
		sent := time.Now()
		if err := buy(ctx, s, p, i); err != nil {
			return out, err
		}
		for {
			if at, ok := seen.of(p.NamespaceID); ok {
				out.Purchases = append(out.Purchases, s.TwoHops(sent, at, "payment-result", "provisioning"))
				break
			}
			if time.Since(sent) > time.Minute {
				return out, fmt.Errorf("bench: purchase %s not provisioned in a minute", p.NamespaceID)
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	out.LoadPurchases = meter.Stop()
	meter = StartMeter()
	floor, err := s.HopFloor(ctx, n)
	out.Floor, out.LoadFloor = floor, meter.Stop()
	return out, err
}

// MeasureThroughput buys orders subscriptions at concurrency and waits until
// GitLab has received every provisioning call.
func MeasureThroughput(ctx context.Context, s *localstack.Stack, run string, orders, concurrency int) (Throughput, error) {
	// The stack's builds left files whose writeback would land in this run.
	syscall.Sync()
	seen := newProvisions(s.GitLab)
	cpu0 := processCPUs()
	meter := StartMeter()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= orders {
					return
				}
				if err := buy(ctx, s, newPurchase(run, i), i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Throughput{}, err
	}
	for seen.update(); seen.count < orders; seen.update() {
		if time.Since(start) > 5*time.Minute || ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("bench: %d of %d orders provisioned after %s", seen.count, orders, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	load := meter.Stop()
	return Throughput{Orders: orders, Concurrency: concurrency, Elapsed: seen.last.Sub(start), Load: load,
		CPU: sharesPerOrder(cpu0, processCPUs(), orders)}, nil
}

// buy posts p's signed checkout completion to the stack's webhook.
func buy(ctx context.Context, s *localstack.Stack, p demo.Purchase, i int) error {
	r, err := demo.SendWebhook(ctx, s.URLs["checkout-webhook"], localstack.WebhookSecret, p.CheckoutCompleted("evt_"+p.SessionID, time.Now()))
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fmt.Errorf("bench: purchase %d answered %d %s", i, r.Status, r.Body)
	}
	return nil
}
