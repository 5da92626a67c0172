package bench

import (
	"os"
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

// A kernel worker renames itself after its work between the readings: only
// what it spent between them counts, under its new name; so does all of a
// process started between them.
func TestSharesCountWhatEachProcessSpentBetweenTheReadings(t *testing.T) {
	before := map[int]processCPU{
		10: {"[kworker/u8:0-writeback]", 90 * time.Second}, // since boot
		20: {"Firestore emulator", 30 * time.Second},
	}
	after := map[int]processCPU{
		10: {"[kworker/u8:0-kvfree_rcu_reclaim]", 90*time.Second + 200*time.Millisecond},
		20: {"Firestore emulator", 34 * time.Second},
		30: {"provisioning", time.Second},
	}
	got := map[string]time.Duration{}
	for _, s := range sharesPerOrder(before, after, 1000) {
		got[s.Name] = s.PerOrder
	}
	want := map[string]time.Duration{"Firestore emulator": 4 * time.Millisecond, "provisioning": time.Millisecond, "[kworker/u8:0-kvfree_rcu_reclaim]": 200 * time.Microsecond}
	if len(got) != len(want) {
		t.Fatalf("shares = %v, want %v", got, want)
	}
	for name, per := range want {
		if got[name] != per {
			t.Errorf("%s: %v per order, want %v (all: %v)", name, got[name], per, got)
		}
	}
}

// A short level's CPU is a few milliseconds, under one 10 ms tick of
// /proc/<pid>/stat: the webhook's reading must count finer than that, or a
// level can read as no CPU at all.
func TestThreadsCPUCountsFinerThanATick(t *testing.T) {
	pid := os.Getpid()
	start, err := ThreadsCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for spin := time.Now(); time.Since(spin) < 100*time.Microsecond; {
		}
		now, err := ThreadsCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if used := now - start; used >= 3*time.Millisecond {
			if used >= 9*time.Millisecond {
				t.Fatalf("first reading past 3 ms of CPU is %v: counted in ticks, not finer", used)
			}
			return
		}
	}
	t.Fatal("the test's own CPU did not reach 3 ms in 10 s of spinning")
}
