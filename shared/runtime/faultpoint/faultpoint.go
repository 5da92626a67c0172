// Package faultpoint lets the fault-injection suite kill a function at a
// named line, to prove that a crash there loses nothing. It is inert unless
// a test main calls Enable; production never does, and nothing here reads
// the environment. The local stack's main (infra/localstack/cmd/function)
// enables the points named in FAULT_CRASH, e.g.
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
	"sync/atomic"
)

// EnvVar names the variable the local stack's main reads the points from;
// this package never reads it.
const EnvVar = "FAULT_CRASH"

// ExitCode is what a crashed process exits with, so a supervisor can tell a
// planned crash from a real one.
const ExitCode = 86

// points are the enabled crash points; nil (production) leaves Crash inert.
var points atomic.Pointer[map[string]float64]

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

// Enable arms the crash points of spec ("name:probability,..."); an empty
// spec disarms them. Only a test main calls it, before serving.
func Enable(spec string) error {
	p, err := Parse(spec)
	if err != nil {
		return err
	}
	if len(p) == 0 {
		points.Store(nil)
		return nil
	}
	points.Store(&p)
	return nil
}

// Crash exits the process at point name if a test main enabled it.
func Crash(name string) {
	p := points.Load()
	if p == nil {
		return
	}
	if prob := (*p)[name]; prob > 0 && rand.Float64() < prob {
		fmt.Fprintf(os.Stderr, `{"severity":"WARNING","message":"faultpoint: crashing on purpose","point":%q}`+"\n", name)
		os.Exit(ExitCode)
	}
}
