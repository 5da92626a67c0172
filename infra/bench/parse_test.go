package bench

import (
	"math"
	"os"
	"testing"
	"time"
)

// The benchmark lines go test prints are read into figures, whatever the
// order of the metrics.
func TestParseBenchLines(t *testing.T) {
	h := handlerFigures(parseBenchLines([]byte("goos: linux\nBenchmarkWebhook/memory-2   5000   88528 ns/op   1.000 commits/event   0.8000 publishes/event   50656 B/op   136 allocs/op\nPASS\n"), "BenchmarkWebhook"))
	if len(h) != 1 || h[0].Name != "memory" || h[0].PerOp != 88528 || h[0].CommitsPerEvent != 1 || h[0].PublishesPerEvent != 0.8 || h[0].AllocsPerOp != 136 || h[0].BytesPerOp != 50656 {
		t.Fatalf("handler = %+v", h)
	}
	out, err := os.ReadFile("testdata/images.txt")
	if err != nil {
		t.Fatal(err)
	}
	im := imageFigures(parseBenchLines(out, "BenchmarkImages"))
	if len(im) != 1 || im[0].Name != "checkout-webhook/gcp" || im[0].Startup != 66*time.Millisecond || im[0].FromCLI != 126*time.Millisecond ||
		im[0].FromExec != 19*time.Millisecond || im[0].Stop != time.Millisecond || im[0].RSSBytes != 27053260 {
		t.Fatalf("images = %+v", im)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if p50, p99, p100 := Percentile(ds, 50), Percentile(ds, 99), Percentile(ds, 100); p50 != 50 || p99 != 99 || p100 != 100 {
		t.Fatalf("p50 %d p99 %d p100 %d", p50, p99, p100)
	}
}

// The machine's load counts steal (the hypervisor running other guests) as
// busy, and says how much of it was steal: the figures here move with it.
func TestLoadSaysHowMuchTheHypervisorStole(t *testing.T) {
	start := parseCPU("cpu  1000 0 200 5000 100 0 10 300 0 0")
	end := parseCPU("cpu  1600 0 250 5800 100 0 20 700 0 0")
	if start.total != 6610 || start.idle != 5100 || start.steal != 300 {
		t.Fatalf("parsed %+v", start)
	}
	l := Meter{start: start}.between(end)
	// 1,860 jiffies passed: 800 idle, 400 of them stolen.
	if got, want := l.Busy, 1-800.0/1860; math.Abs(got-want) > 1e-9 {
		t.Errorf("busy %.4f, want %.4f", got, want)
	}
	if got, want := l.Steal, 400.0/1860; math.Abs(got-want) > 1e-9 {
		t.Errorf("steal %.4f, want %.4f", got, want)
	}
	if s := l.String(); s != "load 0.0, cpu 57% (steal 22%)" {
		t.Errorf("String() = %q", s)
	}
	if (parseCPU("cpu") != cpuTimes{}) {
		t.Error("a short line parsed as times")
	}
}
