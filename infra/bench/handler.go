package bench

import (
	"context"
	"fmt"
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
	lines, load, err := runGoBench(ctx, root, "BenchmarkWebhook", "./functions/checkout-webhook/", "-benchmem", "-benchtime", fmt.Sprintf("%dx", n))
	if err != nil {
		return nil, err
	}
	benches := handlerFigures(lines)
	for i := range benches {
		benches[i].Load = load
	}
	return benches, nil
}

func handlerFigures(lines []benchLine) []HandlerBench {
	var res []HandlerBench
	for _, l := range lines {
		m := l.Metrics
		res = append(res, HandlerBench{Name: l.Name, PerOp: time.Duration(m["ns/op"]), BytesPerOp: m["B/op"], AllocsPerOp: m["allocs/op"],
			CommitsPerEvent: m["commits/event"], PublishesPerEvent: m["publishes/event"]})
	}
	return res
}
