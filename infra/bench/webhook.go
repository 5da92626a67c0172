package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/runtimeenv"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/loadgen"
	"fulfillment/shared/testsupport/localproc"
)

// WebhookLevel is the webhook's figures at one concurrency.
type WebhookLevel struct {
	Concurrency int
	Events      int // distinct events
	Deliveries  int // requests, 1 to 3 per event
	Elapsed     time.Duration
	P50, P99    time.Duration
	CPU         time.Duration // the webhook process's CPU over the level
	Failed      int           // answers other than 200
	Load        Load
	// Handled is how many of the distinct events are of a type the webhook
	// publishes; Published how many messages reached provider-events, and
	// PublishedEvents how many distinct events they carry (a repeat racing
	// its first delivery publishes the event again, under the same id).
	Handled, Published, PublishedEvents int
}

// PublishesPerEvent is the messages published per distinct event.
func (l WebhookLevel) PublishesPerEvent() float64 {
	return float64(l.Published) / float64(max(l.Events, 1))
}

// EventsPerSecond counts distinct events; DeliveriesPerSecond every request.
func (l WebhookLevel) EventsPerSecond() float64 { return float64(l.Events) / l.Elapsed.Seconds() }

// DeliveriesPerSecond counts every request, repeats included.
func (l WebhookLevel) DeliveriesPerSecond() float64 {
	return float64(l.Deliveries) / l.Elapsed.Seconds()
}

// CPUPerDelivery is the process's CPU per request.
func (l WebhookLevel) CPUPerDelivery() time.Duration {
	return l.CPU / time.Duration(max(l.Deliveries, 1))
}

// WebhookProcess is the shipped webhook (its Cloud Run entry point) running
// as its own process on the emulators, in a project of its own.
type WebhookProcess struct {
	URL     string
	Project string
	// CPUs says what CPU the process has: Cloud Run's one vCPU (a cgroup's
	// quota) where this machine lets the bench make a cgroup, else the
	// machine's.
	CPUs  string
	cmd   *exec.Cmd
	group *localproc.CPUGroup // nil: no quota
	ps    *pubsub.Client      // reads what the webhook published (countSubscription)
}

// countSubscription is a pull subscription on provider-events that counts
// what the webhook publishes.
const countSubscription = "bench-count"

// Secret signs the benchmark's events.
const Secret = "whsec_bench"

// StartWebhook builds and starts the webhook; its log goes to /dev/null, as
// cheaply as a process can write it.
func StartWebhook(ctx context.Context, root, dir string) (*WebhookProcess, error) {
	bin := filepath.Join(dir, "checkout-webhook")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./functions/checkout-webhook/cmd/gcp")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: go build: %v\n%s", err, out)
	}
	e, ok := emulator.FromEnv()
	if !ok {
		return nil, fmt.Errorf("bench: needs the emulators (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST): run under infra/cmd/withemulators")
	}
	project := emulator.NewProject("benchhook")
	ps, err := createCountedTopic(ctx, project, catalog.TopicProviderEvents)
	if err != nil {
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		ps.Close()
		return nil, err
	}
	defer devnull.Close()
	w := &WebhookProcess{Project: project, ps: ps}
	w.limitToOneCPU()
	// On a fresh port again if another process took this one first.
	err = localproc.OnFreePorts(1, func(ports []int) error {
		// K_SERVICE and the rest as Cloud Run sets them: with K_SERVICE set,
		// functions-framework-go writes a newline to stdout and to stderr after
		// every request (to flush Cloud Functions' logs), two writes per
		// delivery that production pays and the figures must include.
		env := map[string]string{
			"K_SERVICE": "checkout-webhook", "K_REVISION": "checkout-webhook-00001-ben", "K_CONFIGURATION": "checkout-webhook",
			"PORT": fmt.Sprint(ports[0]), "HOST": "127.0.0.1", "FUNCTION_TARGET": "checkout-webhook",
			"GOOGLE_CLOUD_PROJECT": project, "STRIPE_WEBHOOK_SECRETS": Secret,
			emulator.FirestoreHostEnv: e.FirestoreHost, emulator.PubSubHostEnv: e.PubSubHost,
		}
		maps.Copy(env, runtimeenv.Vars()) // as the image we ship sets them
		w.cmd = localproc.Command(bin, env, devnull)
		if w.group != nil {
			w.group.Wrap(w.cmd)
		}
		w.URL = fmt.Sprintf("http://127.0.0.1:%d/", ports[0])
		if err := w.cmd.Start(); err != nil {
			return err
		}
		return localproc.WaitServing(ctx, w.cmd, 30*time.Second, fmt.Sprintf("127.0.0.1:%d", ports[0]))
	})
	if err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// limitToOneCPU makes the cgroup of one CPU the process starts in, as Cloud
// Run gives the webhook one vCPU (terraform/modules/function), so the entry
// point sets GOMAXPROCS from the quota as it does there.
func (w *WebhookProcess) limitToOneCPU() {
	g, err := localproc.NewCPUGroup(fmt.Sprintf("bench-webhook-%d", os.Getpid()), 1)
	if err != nil {
		w.CPUs = fmt.Sprintf("the machine's %d, no quota (%v)", runtime.NumCPU(), err)
		return
	}
	w.group, w.CPUs = g, "1, a cgroup's quota as Cloud Run's one vCPU"
}

// Pid is the process's id.
func (w *WebhookProcess) Pid() int { return w.cmd.Process.Pid }

// Stop ends the process.
func (w *WebhookProcess) Stop() {
	if w.cmd != nil && w.cmd.Process != nil {
		localproc.Stop(10*time.Second, w.cmd)
	}
	if w.group != nil {
		_ = w.group.Remove()
	}
	w.ps.Close()
}

// createCountedTopic creates topic and countSubscription on it, and returns
// the client that reads it.
func createCountedTopic(ctx context.Context, project, topic string) (*pubsub.Client, error) {
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, err
	}
	name := "projects/" + project + "/topics/" + topic
	if _, err = ps.Raw().TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name}); err == nil {
		_, err = ps.Raw().SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: "projects/" + project + "/subscriptions/" + countSubscription, Topic: name, AckDeadlineSeconds: 60})
	}
	if err != nil {
		ps.Close()
		return nil, err
	}
	return ps, nil
}

// drainPublished acknowledges every message on countSubscription until none
// came for a second, and returns how many there were and how many distinct
// event ids they carry.
func (w *WebhookProcess) drainPublished(parent context.Context) (messages, events int, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var mu sync.Mutex
	ids := map[string]bool{}
	last := time.Now()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			idle := time.Since(last) > time.Second
			mu.Unlock()
			if idle {
				cancel()
			}
		}
	}()
	err = w.ps.Raw().Subscriber(countSubscription).Receive(ctx, func(_ context.Context, m *gpubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		messages++
		ids[m.Attributes["ce-id"]] = true
		last = time.Now()
	})
	if errors.Is(err, context.Canceled) && parent.Err() == nil {
		err = nil // stopped once idle
	}
	mu.Lock()
	defer mu.Unlock()
	return messages, len(ids), err
}

// Drive sends events distinct events (1 to 3 deliveries each) to the
// webhook at concurrency and measures them. run names the events apart
// from every other level's.
func (w *WebhookProcess) Drive(ctx context.Context, run string, events, concurrency int) (WebhookLevel, error) {
	deliveries := loadgen.Run(run, events, Secret, uint64(concurrency))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, len(deliveries))
	var next atomic.Int64
	var failed atomic.Int64
	cpu0, err := ThreadsCPU(w.Pid())
	if err != nil {
		return WebhookLevel{}, err
	}
	meter := StartMeter()
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(deliveries) || ctx.Err() != nil {
					return
				}
				req, _ := deliveries[i].Request(w.URL)
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(ctx))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	load := meter.Stop()
	cpu1, err := ThreadsCPU(w.Pid())
	if err != nil {
		return WebhookLevel{}, err
	}
	l := WebhookLevel{
		Concurrency: concurrency, Events: events, Deliveries: len(deliveries), Elapsed: elapsed,
		P50: Percentile(lat, 50), P99: Percentile(lat, 99), CPU: cpu1 - cpu0, Failed: int(failed.Load()), Load: load,
		Handled: handled(deliveries),
	}
	l.Published, l.PublishedEvents, err = w.drainPublished(ctx)
	return l, err
}

// handled counts the distinct events of a type the webhook publishes.
func handled(ds []loadgen.Delivery) int {
	seen := map[string]bool{}
	for _, d := range ds {
		if _, ok := stripe.InternalType(d.Type); ok {
			seen[d.Event] = true
		}
	}
	return len(seen)
}
