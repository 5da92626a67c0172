package bench

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProcessShare is one process's CPU per order over the pipeline's run.
type ProcessShare struct {
	Name     string
	PerOrder time.Duration
}

// Kernel says the share is a kernel thread's (writeback, RCU reclaim): the
// host's work, named in brackets by processName.
func (s ProcessShare) Kernel() bool { return strings.HasPrefix(s.Name, "[") }

// processCPUByName is the CPU used so far by every process on the machine,
// summed by what it is (processName).
func processCPUByName() map[string]time.Duration {
	out := map[string]time.Duration{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cpu, err := ProcessCPU(pid)
		if err != nil || cpu == 0 {
			continue
		}
		out[processName(pid, self)] += cpu
	}
	return out
}

// processName names a process for the breakdown: each emulator, each
// function of the local stack (one binary, told apart by FUNCTION_TARGET),
// this process (the load, the doubles, the redelivery stand-ins), or its
// command.
func processName(pid, self int) string {
	if pid == self {
		return "bench (load, doubles, redelivery stand-ins)"
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	switch {
	case strings.Contains(string(cmdline), "cloud-firestore-emulator"):
		return "Firestore emulator"
	case strings.Contains(string(cmdline), "pubsub-emulator"):
		return "Pub/Sub emulator"
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range strings.Split(string(env), "\x00") {
		if fn, ok := strings.CutPrefix(kv, "FUNCTION_TARGET="); ok {
			return fn
		}
	}
	if name := args[0]; name != "" {
		return name[strings.LastIndex(name, "/")+1:]
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)) // a kernel thread has no command line
	return "[" + strings.TrimSpace(string(comm)) + "]"
}

// sharesPerOrder is each process's CPU between two readings per order, the
// largest first, leaving out what is under 0.1 ms.
func sharesPerOrder(before, after map[string]time.Duration, orders int) []ProcessShare {
	var out []ProcessShare
	for name, cpu := range after {
		if per := (cpu - before[name]) / time.Duration(max(orders, 1)); per >= 100*time.Microsecond {
			out = append(out, ProcessShare{Name: name, PerOrder: per})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PerOrder > out[j].PerOrder })
	return out
}
