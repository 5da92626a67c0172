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

// processCPU is one process's name (processName) and CPU used so far.
type processCPU struct {
	name string
	cpu  time.Duration
}

// processCPUs is the CPU used so far by every process on the machine, by
// pid: a kernel worker renames itself after the work it is doing
// ("kworker/u8:0-writeback"), so only its pid tells one reading of it from
// another. Compared by name, a renamed worker counted its whole lifetime's
// CPU as spent in the run: the 1-6 ms per order seen for kernel threads.
func processCPUs() map[int]processCPU {
	out := map[int]processCPU{}
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
		out[pid] = processCPU{name: processName(pid, self), cpu: cpu}
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

// sharesPerOrder is the CPU each kind of process (its name at the second
// reading) spent between two readings, per order, the largest first,
// leaving out what is under 0.1 ms. A pid used less CPU than at the first
// reading only if it is a new process under a reused pid: all of its CPU
// is the run's.
func sharesPerOrder(before, after map[int]processCPU, orders int) []ProcessShare {
	spent := map[string]time.Duration{}
	for pid, a := range after {
		d := a.cpu
		if b, ok := before[pid]; ok && b.cpu <= a.cpu {
			d -= b.cpu
		}
		spent[a.name] += d
	}
	var out []ProcessShare
	for name, cpu := range spent {
		if per := cpu / time.Duration(max(orders, 1)); per >= 100*time.Microsecond {
			out = append(out, ProcessShare{Name: name, PerOrder: per})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PerOrder > out[j].PerOrder })
	return out
}
