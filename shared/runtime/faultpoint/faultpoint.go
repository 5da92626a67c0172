// Package faultpoint lets the fault-injection suite kill a function at a
// named line, to prove that a crash there loses nothing. It is inert unless
// FAULT_CRASH is set, which only the test stack does, e.g.
//
//	FAULT_CRASH="consumer.after-commit:0.02,consumer.before-commit:0.02"
//
// Each named point then exits the process with that probability.
package faultpoint

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
)

// EnvVar names the setting; production never sets it.
const EnvVar = "FAULT_CRASH"

// ExitCode is what a crashed process exits with, so a supervisor can tell a
// planned crash from a real one.
const ExitCode = 86

var (
	once   sync.Once
	points map[string]float64
)

// Parse reads "name:probability,..."; malformed entries are errors.
func Parse(spec string) (map[string]float64, error) {
	out := map[string]float64{}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, p, ok := strings.Cut(part, ":")
		prob, err := strconv.ParseFloat(p, 64)
		if !ok || err != nil || prob < 0 || prob > 1 {
			return nil, fmt.Errorf("faultpoint: bad entry %q (want name:probability)", part)
		}
		out[name] = prob
	}
	return out, nil
}

func load() {
	spec := os.Getenv(EnvVar)
	if spec == "" {
		return
	}
	p, err := Parse(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	points = p
}

// Crash exits the process at point name if the test stack asked for it.
func Crash(name string) {
	once.Do(load)
	if points == nil {
		return
	}
	if p := points[name]; p > 0 && rand.Float64() < p {
		fmt.Fprintf(os.Stderr, `{"severity":"WARNING","message":"faultpoint: crashing on purpose","point":%q}`+"\n", name)
		os.Exit(ExitCode)
	}
}
