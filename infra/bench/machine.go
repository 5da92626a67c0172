// Package bench measures the system as `make bench` reports it: the
// webhook's cost per event, its throughput and latency under load on the
// emulators, the pipeline's latency against the transport's own floor and
// its throughput, and the shipped images' start-up and memory. Every figure
// carries the machine's load while it was taken, since on this machine the
// emulators share two cores with what is measured.
package bench

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Load is how busy the machine was over an interval.
type Load struct {
	Avg1 float64 // the 1-minute load average at the end
	Busy float64 // fraction of all CPUs busy over the interval (0..1), steal included
	// Steal is the fraction of all CPUs' time the hypervisor gave to other
	// guests while this one had work: on a virtual machine the same code
	// runs slower by that much, and a figure is only comparable with
	// figures taken at a like steal.
	Steal float64
}

func (l Load) String() string {
	return fmt.Sprintf("load %.1f, cpu %.0f%% (steal %.0f%%)", l.Avg1, 100*l.Busy, 100*l.Steal)
}

// cpuTimes is the machine's total, idle and steal jiffies (/proc/stat's
// cpu line).
type cpuTimes struct{ total, idle, steal uint64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPU(line)
}

// parseCPU reads /proc/stat's "cpu" line: user nice system idle iowait irq
// softirq steal guest guest_nice, in jiffies.
func parseCPU(line string) cpuTimes {
	var t cpuTimes
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return t
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		t.total += v
		switch i {
		case 3, 4: // idle, iowait
			t.idle += v
		case 7:
			t.steal += v
		}
	}
	return t
}

// Meter measures the machine's load from Start to Stop.
type Meter struct{ start cpuTimes }

// StartMeter begins an interval.
func StartMeter() Meter { return Meter{start: readCPU()} }

// Stop ends the interval.
func (m Meter) Stop() Load {
	l := m.between(readCPU())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		l.Avg1, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	return l
}

// between is the share of the CPUs busy and stolen from m's start to end.
func (m Meter) between(end cpuTimes) Load {
	l := Load{}
	if d := end.total - m.start.total; d > 0 {
		l.Busy = 1 - float64(end.idle-m.start.idle)/float64(d)
		l.Steal = float64(end.steal-m.start.steal) / float64(d)
	}
	return l
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on Linux).
const clockTick = 100

// ProcessCPU is the CPU time (user and system) pid has used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ")".
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, fmt.Errorf("bench: unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// ThreadsCPU is the CPU time pid's live threads have run so far, to the
// nanosecond (each thread's /proc/<pid>/task/<tid>/schedstat). ProcessCPU
// counts in 10 ms ticks, coarser than a short level's whole CPU; this one
// does not count a thread that has exited, so it suits a Go program, whose
// threads live as long as it does.
func ThreadsCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended after the listing
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("bench: empty schedstat of thread %s of %d", t.Name(), pid)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: schedstat of thread %s of %d: %w", t.Name(), pid, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// ResidentBytes is pid's resident memory (VmRSS).
func ResidentBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS for %d", pid)
}

// Percentile is the p-th percentile (0..100) of ds, nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
