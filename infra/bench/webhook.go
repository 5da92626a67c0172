package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/domain/catalog"
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
	cmd     *exec.Cmd
}

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
	if err := createTopic(ctx, project, catalog.TopicProviderEvents); err != nil {
		return nil, err
	}
	port, err := localproc.FreePort()
	if err != nil {
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmd := localproc.Command(bin, map[string]string{
		"PORT": fmt.Sprint(port), "HOST": "127.0.0.1", "FUNCTION_TARGET": "checkout-webhook",
		"GOOGLE_CLOUD_PROJECT": project, "STRIPE_WEBHOOK_SECRETS": Secret,
		emulator.FirestoreHostEnv: e.FirestoreHost, emulator.PubSubHostEnv: e.PubSubHost,
	}, devnull)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &WebhookProcess{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Project: project, cmd: cmd}
	if err := localproc.WaitListening(ctx, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// Pid is the process's id.
func (w *WebhookProcess) Pid() int { return w.cmd.Process.Pid }

// Stop ends the process.
func (w *WebhookProcess) Stop() { localproc.Stop(10*time.Second, w.cmd) }

func createTopic(ctx context.Context, project, topic string) error {
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer ps.Close()
	_, err = ps.Raw().TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic})
	return err
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
	cpu0, err := ProcessCPU(w.Pid())
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
	cpu1, err := ProcessCPU(w.Pid())
	if err != nil {
		return WebhookLevel{}, err
	}
	return WebhookLevel{
		Concurrency: concurrency, Events: events, Deliveries: len(deliveries), Elapsed: elapsed,
		P50: Percentile(lat, 50), P99: Percentile(lat, 99), CPU: cpu1 - cpu0, Failed: int(failed.Load()), Load: load,
	}, ctx.Err()
}
