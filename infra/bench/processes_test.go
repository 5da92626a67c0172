package bench

import (
	"strings"
	"testing"
	"time"
)

// The host's kernel threads (writeback, RCU reclaim) are counted in every
// process's CPU per order, and left out of the stack's own.
func TestThePipelinesOwnCPULeavesKernelThreadsOut(t *testing.T) {
	tp := Throughput{Orders: 1000, Concurrency: 8, Elapsed: 8 * time.Second, CPU: []ProcessShare{
		{Name: "Firestore emulator", PerOrder: 5 * time.Millisecond},
		{Name: "[kworker/u8:0-writeback]", PerOrder: 5 * time.Millisecond},
		{Name: "provisioning", PerOrder: 3 * time.Millisecond},
	}}
	var b strings.Builder
	Report{Throughput: tp, Throughputs: []Throughput{tp}}.Print(&b)
	words := func(s string) string { return strings.Join(strings.Fields(s), " ") } // the table's columns are padded
	for _, want := range []string{"every process (median round) 13.0 ms", "kernel threads left out) 8.0 ms"} {
		if !strings.Contains(words(b.String()), want) {
			t.Errorf("the table has no %q:\n%s", want, b.String())
		}
	}
}
