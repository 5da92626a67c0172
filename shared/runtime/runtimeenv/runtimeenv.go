// Package runtimeenv is the environment every function's Go runtime must
// start with: settings the runtime reads only when the process starts, so a
// function cannot set them itself the way its entry point sets GOGC and
// GOMAXPROCS. The base image every function's image is built on sets them
// (infra/image), and so do the local stack and make bench, which start the
// functions as plain processes; the entry point warns when one is missing.
package runtimeenv

import "strings"

// GoDebug is the GODEBUG a function runs with.
//
// schedtrace keeps the runtime's sysmon thread from its deep sleep. A
// function waits on Firestore and Pub/Sub within each request, and each wait
// leaves its one P idle: sysmon then sleeps until woken, the next system
// call wakes it, and it polls every 20 µs for a millisecond before it sleeps
// again (runtime/proc.go, sysmon): two to three thread wake-ups per wait.
// With schedtrace set it never sleeps deeply and backs off to a poll every
// 10 ms, as it does in a process that is never idle. The webhook's CPU per
// delivery fell by a fifth at concurrency 1, 8 and 32 (docs/testing.md).
// The price is that a P held by a blocking system call is handed to another
// thread up to 10 ms later, as in any busy Go process.
//
// The period is the longest GODEBUG takes, 2^31-1 ms: 24.8 days of the
// host's monotonic clock. A host up longer than that prints one "SCHED" line
// to standard error at the start, and another every 24.8 days.
const GoDebug = "schedtrace=2147483647"

// Vars are the variables to start a function's process with.
func Vars() map[string]string { return map[string]string{"GODEBUG": GoDebug} }

// Missing says which of GoDebug's settings the GODEBUG value godebug lacks
// or sets otherwise, none if it has them all.
func Missing(godebug string) []string {
	have := map[string]bool{}
	for _, kv := range strings.Split(godebug, ",") {
		have[strings.TrimSpace(kv)] = true
	}
	var missing []string
	for _, kv := range strings.Split(GoDebug, ",") {
		if !have[kv] {
			missing = append(missing, kv)
		}
	}
	return missing
}
