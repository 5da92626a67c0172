package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// benchLine is one line of a go test benchmark: its name after the
// benchmark's own (without the -GOMAXPROCS suffix) and its metrics by unit.
type benchLine struct {
	Name    string
	Metrics map[string]float64
}

// runGoBench runs one go test benchmark of a package and returns its lines.
func runGoBench(ctx context.Context, root, bench, pkg string, args ...string) ([]benchLine, Load, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-count=1", "-run", "^$", "-bench", "^" + bench + "$"}, append(args, pkg)...)...)
	cmd.Dir = root
	meter := StartMeter()
	out, err := cmd.CombinedOutput()
	load := meter.Stop()
	if err != nil {
		return nil, load, fmt.Errorf("bench: %s: %v\n%s", bench, err, out)
	}
	lines := parseBenchLines(out, bench)
	if len(lines) == 0 {
		return nil, load, fmt.Errorf("bench: %s printed no figures:\n%s", bench, out)
	}
	return lines, load, nil
}

// parseBenchLines reads "<bench>/<name>-N  iterations  v unit  v unit ..." lines.
func parseBenchLines(out []byte, bench string) []benchLine {
	var res []benchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], bench+"/") {
			continue
		}
		name := strings.TrimPrefix(f[0], bench+"/")
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		l := benchLine{Name: name, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				l.Metrics[f[i+1]] = v
			}
		}
		res = append(res, l)
	}
	return res
}
