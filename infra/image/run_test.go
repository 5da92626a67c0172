package image_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"fulfillment/infra/container"
)

// The targets of docs/testing.md (Images): what a cold start and an idle
// instance may cost. Timing depends on the machine's load, so the test
// logs the start-up against its target and fails only past startupLimit.
const (
	startupTarget = 100 * time.Millisecond
	startupLimit  = 10 * time.Second // Cloud Run's probe would give up long before
	rssTarget     = 30 << 20
)

// Every function's image, both entry points, runs as Cloud Run and the
// Knative manifests run it: a read-only root filesystem as user 65532 with
// no capabilities; it serves on PORT (and LISTEN_ADDRESS), its own handler
// answers a request (and 100 more, 10 at a time), both health paths answer
// 200, and on SIGTERM it exits 0
// well within Cloud Run's 10 s. Functions are found under functions/*, so a
// new one is covered without touching this test.
func TestEveryFunctionImageRuns(t *testing.T) {
	p := podmanOrSkip(t)
	b := builtImages(t)
	images := entryImages(t, b)
	ctx := context.Background()
	stop, err := p.Serve(ctx) // started as a platform's agent starts them
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	var report []string
	for _, entry := range b.paths {
		fn, kind := path.Base(path.Dir(path.Dir(entry))), path.Base(entry)
		t.Run(fn+"/"+kind, func(t *testing.T) {
			id, err := p.Load(ctx, b.layout, images[entry])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Remove(ctx, id) })
			m, err := p.Measure(ctx, id, container.Options{Env: container.Settings(fn, "fulfillment-images"), Exercise: concurrentGets})
			if err != nil {
				t.Fatal(err)
			}
			if m.UID != 65532 || !m.ReadOnlyRoot {
				t.Errorf("ran as uid %d, read-only root %v; want 65532 on a read-only root", m.UID, m.ReadOnlyRoot)
			}
			if m.ProbeStatus >= 500 {
				t.Errorf("GET / answered %d: the function's handler failed\n%s", m.ProbeStatus, m.Logs)
			}
			for _, h := range container.HealthPaths {
				if m.Health[h] != http.StatusOK {
					t.Errorf("%s answered %d, want 200", h, m.Health[h])
				}
			}
			if m.ExitCode != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0 (a clean shutdown)\n%s", m.ExitCode, m.Logs)
			}
			if m.StopTime >= container.GracePeriod/2 {
				t.Errorf("took %s to exit after SIGTERM: too close to Cloud Run's %s", m.StopTime, container.GracePeriod)
			}
			// Cloud Run's one CPU, read from inside the image as user 65532.
			if want := `"gomaxprocs":` + container.CPUs; !strings.Contains(m.Logs, want) {
				t.Errorf("no %s in the logs: the entry point did not set GOMAXPROCS from the container's quota\n%s", want, m.Logs)
			}
			if m.Startup > startupLimit {
				t.Errorf("first handled request after %s", m.Startup)
			}
			line := fmt.Sprintf("%-34s start %4d ms (process %3d ms)  rss %4.1f MiB (anon %4.1f)  stop %3d ms",
				fn+"/"+kind, m.Startup.Milliseconds(), m.ProcessStartup.Milliseconds(),
				mib(m.RSSBytes), mib(m.AnonBytes), m.StopTime.Milliseconds())
			if m.ProcessStartup > startupTarget || m.RSSBytes > rssTarget {
				line += fmt.Sprintf("  over target (%s, %d MiB)", startupTarget, rssTarget>>20)
			}
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("images under podman (start: the start request to podman's API service to the first handled request; process: from the exec of the entry point):\n%s", strings.Join(report, "\n"))
}

// warmUp starts one image once, untimed: the API service's first start
// pays for its own lazy set-up, which is no image's start-up.
func warmUp(b *testing.B, p *container.Podman, built *built, images map[string]string) {
	b.Helper()
	ctx := context.Background()
	entry := built.paths[0]
	id, err := p.Load(ctx, built.layout, images[entry])
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Remove(ctx, id) }()
	fn := path.Base(path.Dir(path.Dir(entry)))
	if _, err := p.Measure(ctx, id, container.Options{Env: container.Settings(fn, "fulfillment-images")}); err != nil {
		b.Fatal(err)
	}
}

// concurrentGets sends 100 GETs, 10 at a time, before the resident memory
// is read: every one must be answered by the function (no 5xx, no reset).
func concurrentGets(ctx context.Context, base string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					errs <- fmt.Errorf("GET / answered %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // the first, if any
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// podmanOrSkip finds podman; the test skips only where podman is missing
// and make tools could not have installed it (not root, no apt-get), and
// never on CI.
func podmanOrSkip(t testing.TB) *container.Podman {
	t.Helper()
	p, err := container.Find()
	if err == nil {
		return p
	}
	_, aptErr := exec.LookPath("apt-get")
	if os.Getenv("CI") != "" || (os.Geteuid() == 0 && aptErr == nil) {
		t.Fatalf("%v: run `make tools`", err)
	}
	t.Skipf("%v; without it the images are built but not run", err)
	return nil
}

// entryImages maps each entry point (./functions/<name>/cmd/<kind>) to its
// image's digest, from the Go build info of the binary in the image (ko
// prints the images in no particular order).
func entryImages(t testing.TB, b *built) map[string]string {
	t.Helper()
	l, err := layout.FromPath(b.layout)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, ref := range b.refs {
		img := imageAt(t, l, ref)
		layers, err := img.Layers()
		if err != nil || len(layers) < 2 {
			t.Fatalf("%s: %d layers (%v)", ref, len(layers), err)
		}
		cfg, err := img.ConfigFile()
		if err != nil || len(cfg.Config.Entrypoint) != 1 {
			t.Fatalf("%s: config %v (%v)", ref, cfg, err)
		}
		_, digest, _ := strings.Cut(ref, "@")
		found["./"+strings.TrimPrefix(builtPackage(t, layers[1:], cfg.Config.Entrypoint[0]), "fulfillment/")] = digest
	}
	for _, p := range b.paths {
		if found[p] == "" {
			t.Fatalf("no image holds %s", p)
		}
	}
	return found
}

// BenchmarkImages measures every function's images under podman: the
// figures of docs/testing.md (Images). Run it with -benchtime 1x for one
// cold start each:
//
//	go test -run '^$' -bench BenchmarkImages -benchtime 1x ./infra/image/
func BenchmarkImages(b *testing.B) {
	cli := podmanOrSkip(b)
	built := builtImages(b)
	images := entryImages(b, built)
	ctx := context.Background()
	// Started through podman's API service, as a platform's agent starts a
	// container; the podman command's own start-up is reported beside it.
	p := cli.CLI()
	stop, err := p.Serve(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	warmUp(b, p, built, images)
	for _, entry := range built.paths {
		fn, kind := path.Base(path.Dir(path.Dir(entry))), path.Base(entry)
		b.Run(fn+"/"+kind, func(b *testing.B) {
			id, err := p.Load(ctx, built.layout, images[entry])
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Remove(ctx, id) })
			var startup, fromCLI, process, stop time.Duration
			var rss int64
			opts := container.Options{Env: container.Settings(fn, "fulfillment-images"), Exercise: concurrentGets}
			for b.Loop() {
				m, err := p.Measure(ctx, id, opts)
				if err != nil {
					b.Fatal(err)
				}
				viaCLI, err := cli.Measure(ctx, id, opts)
				if err != nil {
					b.Fatal(err)
				}
				startup, process, stop, rss = startup+m.Startup, process+m.ProcessStartup, stop+m.StopTime, max(rss, m.RSSBytes, viaCLI.RSSBytes)
				fromCLI += viaCLI.Startup
			}
			n := float64(b.N)
			b.ReportMetric(float64(startup.Microseconds())/1e3/n, "ms-first-request")
			b.ReportMetric(float64(fromCLI.Microseconds())/1e3/n, "ms-first-request-cli")
			b.ReportMetric(float64(process.Microseconds())/1e3/n, "ms-from-exec")
			b.ReportMetric(float64(stop.Microseconds())/1e3/n, "ms-to-exit")
			b.ReportMetric(mib(rss), "MiB-rss")
			b.ReportMetric(0, "ns/op")
		})
	}
}
