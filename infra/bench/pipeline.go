package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
)

// Latency is purchase-to-provisioned against the transport's floor, both
// measured one message at a time in the same stack.
type Latency struct {
	Purchases     []localstack.TwoHops // webhook POST sent -> GitLab's provisioning call received
	Floor         []localstack.TwoHops // two hops of the bare transport (localstack.HopFloor)
	LoadPurchases Load
	LoadFloor     Load
}

// Totals are the hops' whole times; Own the same without the emulator's waits.
func Totals(hs []localstack.TwoHops) []time.Duration {
	return mapHops(hs, func(h localstack.TwoHops) time.Duration { return h.Total })
}

// Own is each of hs's time beside the emulator's push waits.
func Own(hs []localstack.TwoHops) []time.Duration { return mapHops(hs, localstack.TwoHops.Own) }

// Waits is each of hs's emulator push waits.
func Waits(hs []localstack.TwoHops) []time.Duration {
	return mapHops(hs, func(h localstack.TwoHops) time.Duration { return h.EmulatorWait })
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
	return "/namespaces/" + namespaceID + "/provision"
}

// provisionedAt is when GitLab first received namespaceID's provisioning call.
func provisionedAt(s *localstack.Stack, namespaceID string) (time.Time, bool) {
	for _, c := range s.GitLab.Provisions() {
		if strings.HasSuffix(c.Path, provisionPath(namespaceID)) {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// MeasureLatency buys n subscriptions one after the other and times each to
// its provisioning call (its two hops: the checkout event pushed to
// payment-result, the activation pushed to provisioning), then measures n
// two-hop floors, each send after the same pauses (localstack.PauseBefore).
func MeasureLatency(ctx context.Context, s *localstack.Stack, run string, n int) (Latency, error) {
	var out Latency
	meter := StartMeter()
	for i := range n {
		time.Sleep(localstack.PauseBefore(i))
		p := newPurchase(run, i)
		sent := time.Now()
		if err := buy(ctx, s, p, i); err != nil {
			return out, err
		}
		for {
			if at, ok := provisionedAt(s, p.NamespaceID); ok {
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
	before := len(s.GitLab.Provisions())
	cpu0 := processCPUByName()
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
	var last time.Time
	for {
		calls := s.GitLab.Provisions()[before:]
		if len(calls) >= orders {
			for _, c := range calls {
				if c.Time.After(last) {
					last = c.Time
				}
			}
			break
		}
		if time.Since(start) > 5*time.Minute || ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("bench: %d of %d orders provisioned after %s", len(calls), orders, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	load := meter.Stop()
	return Throughput{Orders: orders, Concurrency: concurrency, Elapsed: last.Sub(start), Load: load,
		CPU: sharesPerOrder(cpu0, processCPUByName(), orders)}, nil
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
