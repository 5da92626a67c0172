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

// ImageFigures are one shipped image's start-up and memory under podman
// (infra/image's BenchmarkImages: the image we ship, read-only root, user
// 65532, as the Knative manifests run it).
type ImageFigures struct {
	Name     string        // function/entry point
	Startup  time.Duration // podman start -> first handled request
	FromExec time.Duration // the binary's exec -> first handled request
	Stop     time.Duration // SIGTERM -> exit
	RSSBytes int64
	Load     Load
}

// MeasureImages builds every function's images and starts each under podman.
func MeasureImages(ctx context.Context, root string) ([]ImageFigures, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkImages$",
		"-benchtime", "1x", "-timeout", "15m", "./infra/image/")
	cmd.Dir = root
	meter := StartMeter()
	out, err := cmd.CombinedOutput()
	load := meter.Stop()
	if err != nil {
		return nil, fmt.Errorf("bench: BenchmarkImages: %v\n%s", err, out)
	}
	figs := parseImages(out)
	if len(figs) == 0 {
		return nil, fmt.Errorf("bench: BenchmarkImages printed no figures (is podman installed? make tools):\n%s", out)
	}
	for i := range figs {
		figs[i].Load = load
	}
	return figs, nil
}

// parseImages reads "BenchmarkImages/<fn>/<entry>-2 1 v ms-first-request ..." lines.
func parseImages(out []byte) []ImageFigures {
	var res []ImageFigures
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkImages/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkImages/")
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		im := ImageFigures{Name: name}
		ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ms-first-request":
				im.Startup = ms(v)
			case "ms-from-exec":
				im.FromExec = ms(v)
			case "ms-to-exit":
				im.Stop = ms(v)
			case "MiB-rss":
				im.RSSBytes = int64(v * (1 << 20))
			}
		}
		res = append(res, im)
	}
	return res
}
