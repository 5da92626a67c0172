package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fulfillment/infra/localstack"
	"fulfillment/shared/testsupport/emulator"
)

// Requests is what the orders asked of the emulators, per function: every
// function's Firestore and Pub/Sub clients talk to the emulators through an
// RPCCounter of their own. Its stack is apart from the timed ones, since
// the proxies add a hop to every call.
type Requests struct {
	Orders    int
	Functions []FunctionRequests
}

// FunctionRequests is one function's calls over the orders, by method.
type FunctionRequests struct {
	Name              string
	Firestore, PubSub []MethodCount
}

// Total is the calls of cs.
func Total(cs []MethodCount) int64 {
	var n int64
	for _, c := range cs {
		n += c.Calls
	}
	return n
}

// PerOrder is the Firestore and Pub/Sub calls per order over every function.
func (r Requests) PerOrder() (firestore, pubsub float64) {
	for _, f := range r.Functions {
		firestore += float64(Total(f.Firestore))
		pubsub += float64(Total(f.PubSub))
	}
	n := float64(max(r.Orders, 1))
	return firestore / n, pubsub / n
}

// MeasureRequests starts a stack whose functions reach the emulators through
// counters, buys orders subscriptions at concurrency (after a few to open
// the connections), waits until every order is provisioned and the calls
// have stopped, and returns the calls made for them.
func MeasureRequests(ctx context.Context, root string, orders, concurrency int) (Requests, error) {
	e, ok := emulator.FromEnv()
	if !ok {
		return Requests{}, fmt.Errorf("bench: needs the emulators: run under infra/cmd/withemulators")
	}
	env := map[string]map[string]string{}
	fsCount := map[string]*RPCCounter{}
	psCount := map[string]*RPCCounter{}
	defer func() {
		for _, c := range fsCount {
			c.Close()
		}
		for _, c := range psCount {
			c.Close()
		}
	}()
	for _, fn := range localstack.Functions {
		fc, err := StartRPCCounter(e.FirestoreHost)
		if err != nil {
			return Requests{}, err
		}
		fsCount[fn] = fc
		pc, err := StartRPCCounter(e.PubSubHost)
		if err != nil {
			return Requests{}, err
		}
		psCount[fn] = pc
		env[fn] = map[string]string{emulator.FirestoreHostEnv: fc.Addr(), emulator.PubSubHostEnv: pc.Addr()}
	}
	s, err := localstack.Start(ctx, localstack.Options{Project: emulator.NewProject("benchreq"), Root: root, Env: env})
	if err != nil {
		return Requests{}, err
	}
	defer s.Stop()
	run := fmt.Sprintf("r%d", time.Now().UnixNano())
	if _, err := MeasureLatency(ctx, s, run+"warm", 3); err != nil {
		return Requests{}, err
	}
	if err := settle(ctx, fsCount, psCount); err != nil {
		return Requests{}, err
	}
	fs0, ps0 := snapshot(fsCount), snapshot(psCount)
	if _, err := MeasureThroughput(ctx, s, run, orders, concurrency); err != nil {
		return Requests{}, err
	}
	if err := settle(ctx, fsCount, psCount); err != nil {
		return Requests{}, err
	}
	r := Requests{Orders: orders}
	for _, fn := range localstack.Functions {
		fr := FunctionRequests{Name: fn, Firestore: Since(fs0[fn], fsCount[fn].Counts()), PubSub: Since(ps0[fn], psCount[fn].Counts())}
		if len(fr.Firestore)+len(fr.PubSub) > 0 {
			r.Functions = append(r.Functions, fr)
		}
	}
	return r, nil
}

// settle waits until no call went through any counter for two seconds:
// the consumers after provisioning (crm-push, notifications) are done.
func settle(ctx context.Context, counters ...map[string]*RPCCounter) error {
	total := func() (n int64) {
		for _, cs := range counters {
			for _, c := range cs {
				n += c.Total()
			}
		}
		return n
	}
	last, quiet := total(), time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if n := total(); n != last {
			last, quiet = n, time.Now()
		} else if time.Since(quiet) >= 2*time.Second {
			return nil
		}
	}
	return fmt.Errorf("bench: calls to the emulators did not stop within 2 minutes")
}

func snapshot(cs map[string]*RPCCounter) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for fn, c := range cs {
		out[fn] = c.Counts()
	}
	return out
}

// describe is "14.0 (Commit 6.0, BatchGetDocuments 4.0, ...)" per order.
func describe(cs []MethodCount, orders int) string {
	if len(cs) == 0 {
		return "0"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %.1f", c.Method[strings.LastIndex(c.Method, "/")+1:], float64(c.Calls)/float64(max(orders, 1)))
	}
	return fmt.Sprintf("%.1f (%s)", float64(Total(cs))/float64(max(orders, 1)), strings.Join(parts, ", "))
}
