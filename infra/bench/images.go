package bench

import (
	"context"
	"time"
)

// ImageFigures are one shipped image's start-up and memory under podman
// (infra/image's BenchmarkImages: the image we ship, read-only root, user
// 65532, as the Knative manifests run it).
type ImageFigures struct {
	Name     string        // function/entry point
	Startup  time.Duration // start through podman's API service -> first handled request
	FromCLI  time.Duration // the same from a podman start command
	FromExec time.Duration // the binary's exec -> first handled request
	Stop     time.Duration // SIGTERM -> exit
	RSSBytes int64
	Load     Load
}

// MeasureImages builds every function's images and starts each under podman
// (make tools installs podman).
func MeasureImages(ctx context.Context, root string) ([]ImageFigures, error) {
	lines, load, err := runGoBench(ctx, root, "BenchmarkImages", "./infra/image/", "-benchtime", "1x", "-timeout", "15m")
	if err != nil {
		return nil, err
	}
	figs := imageFigures(lines)
	for i := range figs {
		figs[i].Load = load
	}
	return figs, nil
}

func imageFigures(lines []benchLine) []ImageFigures {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	var res []ImageFigures
	for _, l := range lines {
		m := l.Metrics
		res = append(res, ImageFigures{Name: l.Name, Startup: ms(m["ms-first-request"]), FromCLI: ms(m["ms-first-request-cli"]), FromExec: ms(m["ms-from-exec"]),
			Stop: ms(m["ms-to-exit"]), RSSBytes: int64(m["MiB-rss"] * (1 << 20))})
	}
	return res
}
