package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// HandlerBench is one line of the webhook handler's go test benchmark.
type HandlerBench struct {
	Name              string // memory or emulator
	PerOp             time.Duration
	BytesPerOp        float64
	AllocsPerOp       float64
	CommitsPerEvent   float64
	PublishesPerEvent float64
	Load              Load
}

// RunHandlerBench runs BenchmarkWebhook (functions/checkout-webhook) for n
// events per adapter and reads its figures.
func RunHandlerBench(ctx context.Context, root string, n int) ([]HandlerBench, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkWebhook$",
		"-benchmem", "-benchtime", fmt.Sprintf("%dx", n), "./functions/checkout-webhook/")
	cmd.Dir = root
	meter := StartMeter()
	out, err := cmd.CombinedOutput()
	load := meter.Stop()
	if err != nil {
		return nil, fmt.Errorf("bench: BenchmarkWebhook: %v\n%s", err, out)
	}
	benches := parseBench(out)
	for i := range benches {
		benches[i].Load = load
	}
	if len(benches) == 0 {
		return nil, fmt.Errorf("bench: BenchmarkWebhook printed no figures:\n%s", out)
	}
	return benches, nil
}

// parseBench reads "BenchmarkWebhook/memory-2  N  v ns/op  v commits/event ..." lines.
func parseBench(out []byte) []HandlerBench {
	var res []HandlerBench
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkWebhook/") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(f[0], "BenchmarkWebhook/"), "-")
		b := HandlerBench{Name: name}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.PerOp = time.Duration(v)
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			case "commits/event":
				b.CommitsPerEvent = v
			case "publishes/event":
				b.PublishesPerEvent = v
			}
		}
		res = append(res, b)
	}
	return res
}
